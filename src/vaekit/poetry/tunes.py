"""Ci (词) tunes (词牌) as data: each tune's lines, the tone at each place, where it rhymes; the 词林正韵 rhyme parts.

A tune fixes the lengths of its lines, the tone (平/仄) at the places where Song poets agreed, and which line ends
rhyme together. `scripts/ci_tunes.py` derives all three from the Song ci of the corpus (chinese-poetry
`dist/songci`) into `shipped/tunes/tunes.json`, with its rule and provenance: the dominant line structure of a
tune, a tone where at least TONE_AGREEMENT of its ci take it (else free, 中), and a rhyme set of line ends that
share a 词林正韵 part in at least RHYME_AGREEMENT of them. Ci rhyme by the 19 parts of 戈載's 词林正韵, a merge of
the Pingshui groups kept as data (`shipped/tunes/cilin.json`, with its source).

The corpus's ci are in simplified characters and the rhyme book in traditional ones: a simplified character takes
every tone and part of the traditional characters that OpenCC simplifies to it (干 from 乾, 幹 and 干 is both
level and oblique), so no rule is judged on one guessed spelling.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

from vaekit.data.errors import DataError
from vaekit.data.poetry import poem_chars
from vaekit.poetry.verse import Break, pingshui

__all__ = ["Tune", "tunes", "find_tune", "ci_lines", "ci_text", "cilin_parts", "simplified_tones", "ci_rhyme", "check_ci",
           "FREE",
           "TONE_AGREEMENT", "RHYME_AGREEMENT"]

FREE = "中"  # a place whose tone the tune leaves free
TONE_AGREEMENT = 0.75  # share of a tune's ci that must agree on a place's tone for the tune to fix it
RHYME_AGREEMENT = 0.6  # share of a tune's ci whose two line ends must share a rhyme part for them to rhyme


_STOP = re.compile(r"([，。！？；、：])")


def ci_lines(paragraphs: list[str]) -> tuple[list[str], str]:
    """A ci's lines (the pieces of its text between punctuation marks), and each line's stop folded to ， or 。."""
    parts = _STOP.split("".join(paragraphs))
    out, marks = [], []
    for text, stop in zip(parts[0::2], parts[1::2], strict=False):
        if text:
            out.append(text)
            marks.append("。" if stop in "。！？；" else "，")
    return out, "".join(marks)


def ci_text(paragraphs: list[str], tune: Tune) -> str | None:
    """A ci's punctuation-free text when its lines have the tune's lengths, else None."""
    lines, _ = ci_lines(paragraphs)
    return "".join(lines) if tuple(len(line) for line in lines) == tune.lines else None


def _data_dir() -> Path:
    return Path(str(resources.files("vaekit.poetry") / "shipped" / "tunes"))


@dataclass(frozen=True)
class Tune:
    """One tune: its lines' lengths and closing stops (， or 。), the tone at each place (平, 仄 or 中), the sets of
    lines whose ends rhyme together (each with its tone), and how many ci of the corpus it was read from."""

    name: str
    traditional: str
    aliases: tuple[str, ...]
    lines: tuple[int, ...]
    stops: str
    tones: tuple[str, ...]
    rhymes: tuple[tuple[int, ...], ...]
    rhyme_tones: tuple[str, ...]
    poems: int
    total: int

    @property
    def chars(self) -> int:
        """Characters in one ci of this tune (punctuation dropped)."""
        return sum(self.lines)

    @property
    def rhyme_lines(self) -> tuple[int, ...]:
        return tuple(sorted(i for group in self.rhymes for i in group))

    def split(self, text: str) -> list[str]:
        """A punctuation-free text of this tune cut into its lines (what follows the last line, padding, is left)."""
        out, at = [], 0
        for n in self.lines:
            out.append(text[at:at + n])
            at += n
        return out

    def format(self, text: str) -> str:
        """The text with the tune's stops, a line break after each 。."""
        return "".join(line + stop + ("\n" if stop == "。" else "")
                       for line, stop in zip(self.split(text), self.stops, strict=True)).strip()


@lru_cache(maxsize=1)
def tunes() -> tuple[Tune, ...]:
    """The shipped tunes, most written first."""
    path = _data_dir() / "tunes.json"
    if not path.is_file():
        raise DataError(f"{path}: the tune table is missing; reinstall vaekit")
    data = json.loads(path.read_text(encoding="utf-8"))
    return tuple(Tune(t["name"], t["traditional"], tuple(t["aliases"]), tuple(t["lines"]), t["stops"],
                      tuple(t["tones"]), tuple(tuple(r) for r in t["rhymes"]), tuple(t["rhyme_tones"]), t["poems"],
                      t["total"]) for t in data["tunes"])


def find_tune(name: str) -> Tune:
    """The tune a user names, in simplified or traditional characters or by one of its other names; otherwise
    ValueError in one sentence naming a few tunes and where the rest are listed."""
    wanted = name.strip()
    for tune in tunes():
        if wanted in (tune.name, tune.traditional, *tune.aliases):
            return tune
    shown = "、".join(t.name for t in tunes()[:5])
    raise ValueError(f"no tune is named {wanted[:20]!r}; choose one of `vaekit poem tunes` (e.g. {shown})")


@lru_cache(maxsize=1)
def _cilin_groups() -> dict[str, tuple[str, ...]]:
    """Pingshui group -> the 词林正韵 parts it belongs to (two for a group the book splits)."""
    path = _data_dir() / "cilin.json"
    parts = json.loads(path.read_text(encoding="utf-8"))["parts"]
    out: dict[str, list[str]] = defaultdict(list)
    for part, groups in parts.items():
        for group in groups:
            out[group.rstrip("*")].append(part)
    return {g: tuple(p) for g, p in out.items()}


@lru_cache(maxsize=1)
def _simplified_book() -> tuple[dict[str, frozenset[str]], dict[str, frozenset[str]]]:
    """Simplified character -> (its tones, its 词林正韵 parts), from every traditional character mapping to it."""
    try:
        import opencc
    except ImportError:
        raise DataError("ci need OpenCC: `pip install 'vaekit[poetry]'`") from None
    converter = opencc.OpenCC("t2s")
    book, groups_to_parts = pingshui(), _cilin_groups()
    tones: dict[str, set[str]] = defaultdict(set)
    parts: dict[str, set[str]] = defaultdict(set)
    for char, char_tones in book.tones.items():
        for target in {char, converter.convert(char)}:
            tones[target] |= char_tones
            for group in book.groups[char]:
                parts[target].update(groups_to_parts[group])
    return ({c: frozenset(t) for c, t in tones.items()}, {c: frozenset(p) for c, p in parts.items()})


def simplified_tones(char: str) -> frozenset[str]:
    """{'平'}, {'仄'}, both, or empty (not in the rhyme book) for a simplified (or traditional) character."""
    return _simplified_book()[0].get(char, frozenset())


def cilin_parts(char: str) -> frozenset[str]:
    """The 词林正韵 parts a simplified (or traditional) character rhymes in, e.g. {'第二部'} for 光."""
    return _simplified_book()[1].get(char, frozenset())


def ci_rhyme(a: str, b: str) -> bool:
    """Two characters rhyme in ci when they share a 词林正韵 part."""
    return bool(cilin_parts(a) & cilin_parts(b))


def check_ci(text: str, tune: Tune | str) -> list[Break]:
    """Where a ci (punctuation optional) breaks its tune: its length, the tone at each fixed place, and each rhyme
    set sharing one 词林正韵 part in the set's tone (characters the rhyme book lacks are not held against it)."""
    tune = find_tune(tune) if isinstance(tune, str) else tune
    chars = poem_chars(text)
    if len(chars) != tune.chars:
        return [Break(0, None, f"{tune.name} has {tune.chars} characters; this text has {len(chars)}")]
    lines, breaks = tune.split(chars), []
    for i, (line, pattern) in enumerate(zip(lines, tune.tones, strict=True)):
        for j, (c, need) in enumerate(zip(line, pattern, strict=True)):
            have = simplified_tones(c)
            if need != FREE and have and need not in have:
                breaks.append(Break(i, j, f"{c} is not {need} (the tune asks {pattern})"))
    for group in tune.rhymes:  # the tone at a rhyme place is a tone rule of its own, checked above
        ends = [lines[i][-1] for i in group]
        listed = [cilin_parts(c) for c in ends if cilin_parts(c)]
        if len(listed) >= 2 and not frozenset.intersection(*listed):
            breaks.append(Break(group[-1], tune.lines[group[-1]] - 1,
                                  f"rhyme: {'/'.join(ends)} share no 词林正韵 part"))
    return breaks

