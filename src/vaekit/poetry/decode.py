"""Constrained decoding: one decoder that keeps the rules of verse, for any poem model.

A model offers `step_decoder(z)`: a function from the characters so far (B, t) to the logits (B, V) of
position t. The non-autoregressive model ignores the prefix; an autoregressive one reads it. Models know
nothing of rules: here each rule is a mask over the vocabulary at each position, computed from the
prefix alone (so sampling and beam search share it):

- tone: the 2nd, 4th (6th) and last character of a line take the template's tone; 孤平 and 三平尾 are avoided;
- rhyme: the rhyming line ends share one level Pingshui group (chosen, or fixed by the first rhyme the model
  picks), and no rhyme character is used twice;
- no character twice in a row, nor more than twice in a poem (`max_uses`); never the unknown mark □; no line
  copied verbatim from the training corpus;
- acrostic heads, a given first line and required keywords are fixed positions;
- parallelism (對仗): in an eight-line poem the second line of each middle couplet (頷聯, 頸聯) is steered towards
  the characters that stand opposite the first line's in the corpus (`vaekit.poetry.parallel`), a bonus of
  `parallel` nats per unit of association added to the logits; the first and last couplets are left free.

Beside the rules, a repetition penalty (Keskar et al. 2019, as a subtraction in nats) lowers the logit of every
character the poem already holds: an autoregressive decoder left alone repeats characters twice as often as Tang
poets did (benchmarks/poem_repeats.py measures it).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from vaekit.data.poetry import FORM_CHARS, FORM_LINES, Vocabulary, form_length
from vaekit.poetry.parallel import MIDDLE_COUPLETS, association
from vaekit.poetry.sampling import nucleus_sample
from vaekit.poetry.verse import (
    LEVEL,
    OBLIQUE,
    TEMPLATE_COUNTS,
    Template,
    check,
    fixed_positions,
    pingshui,
    rhyme_groups,
    templates,
    tones,
)

__all__ = ["ConstraintError", "VerseRules", "LineSet", "decode", "line_hash", "LINES_FILE", "check_sampling",
           "Sampling", "SAMPLING", "DEFAULT_TEMPERATURE", "DEFAULT_TOP_P", "DEFAULT_REPEAT_PENALTY",
           "rules_from_options", "check_parallel", "PARALLEL_BONUS", "MAX_PARALLEL", "MAX_CANDIDATES", "MAX_BEAM",
           "TEMPERATURE_RANGE", "MAX_REPEAT_PENALTY"]

StepDecoder = Callable[[Tensor], Tensor]


@dataclass(frozen=True)
class Sampling:
    """How poems are drawn, and the one set of defaults that the library, the command line and the page share:
    temperature 0 decodes by argmax; top-p keeps the smallest head of characters holding that much probability; a
    character the poem already holds is `repeat_penalty` nats less likely (benchmarks/poem_repeats.py); `beam` > 1
    searches instead of sampling; `best_of` keeps the best of that many candidates a poem. An autoregressive
    decoder sampled colder repeats stock phrases (docs/benchmarks.md)."""

    temperature: float = 0.85
    top_p: float = 0.95
    repeat_penalty: float = 1.0
    beam: int = 0
    best_of: int = 1

    def check(self, n: int = 1) -> None:
        """Refuse settings that cannot be honoured, or n poems whose work is unbounded (see check_sampling)."""
        check_sampling(n, self.temperature, self.top_p, self.beam, self.best_of, self.repeat_penalty)


SAMPLING = Sampling()
DEFAULT_TEMPERATURE, DEFAULT_TOP_P, DEFAULT_REPEAT_PENALTY = SAMPLING.temperature, SAMPLING.top_p, SAMPLING.repeat_penalty
LINES_FILE = "lines.safetensors"  # beside a poem model: hashes of its training lines
Z_CANDIDATES = 128  # z drawn per poem when fixed characters must be fitted by the non-autoregressive model
# Bounds on what one call may ask, checked before any work: a float32 logit divided by a temperature under 0.01
# overflows, a penalty past 100 nats only re-states the three-uses ban, and the work of a call grows with the
# poems written times best-of times the beam's width (docs/benchmarks.md times the decoder).
TEMPERATURE_RANGE = (0.01, 10.0)  # besides 0, which decodes by argmax
MAX_REPEAT_PENALTY = 100.0
MAX_BEAM = 16
MAX_CANDIDATES = 2000  # poems x best-of x beam width, for one call
NO_RULE = ("none", "off")  # what a user types for "no such rule", on the command line and on the page
PARALLEL_BONUS = 1.0  # the least weight making middle couplets as parallel as Tang's (benchmarks/parallelism.py)
MAX_PARALLEL = 10.0  # nats a unit of association: past this the bonus outweighs the model itself


class ConstraintError(ValueError):
    """Rules that cannot be kept with this model's vocabulary; the message says which and what to do."""


@dataclass
class VerseRules:
    """What a written poem must obey. `template` and `rhyme` take "auto", a name, or None (no such rule)."""

    form: str = "quatrain"
    template: str | None = "auto"
    rhyme: str | None = "auto"
    acrostic: str | None = None
    first_line: str | None = None
    keywords: Sequence[str] = field(default_factory=tuple)
    no_doubles: bool = True
    max_uses: int | None = 2  # a character at most this often in a poem (Tang poets: 99% of quatrains); None: any
    parallel: float = PARALLEL_BONUS  # nats a unit of association, on the middle couplets' second lines; 0: none


DECODE_BATCH = 256  # poems sampled together: one model step serves them all


def check_sampling(n: int = 1, temperature: float = 0.0, top_p: float = 1.0, beam: int = 0, best_of: int = 1,
                   repeat_penalty: float = 0.0) -> None:
    """Refuse, with one sentence naming the setting, sampling settings that cannot be honoured or whose work
    is unbounded; every caller (library, command line, page) goes through here before decoding."""
    def bad(value: object) -> bool:
        return isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value)

    low, high = TEMPERATURE_RANGE
    if bad(temperature) or not (temperature == 0 or low <= temperature <= high):
        raise ValueError(f"temperature must be 0 (argmax) or between {low:g} and {high:g}; got {temperature!r}")
    if bad(top_p) or not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1]; got {top_p!r}")
    if bad(repeat_penalty) or not 0 <= repeat_penalty <= MAX_REPEAT_PENALTY:
        raise ValueError(f"repeat_penalty is nats off a used character's logit, from 0 to {MAX_REPEAT_PENALTY:g}; "
                         f"got {repeat_penalty!r}")
    for name, value, least in (("n", n, 1), ("best_of", best_of, 1), ("beam", beam, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ValueError(f"{name} must be a whole number of at least {least}; got {value!r}")
    if beam == 1 or beam > MAX_BEAM:
        raise ValueError(f"beam must be 0 (sample) or a width from 2 to {MAX_BEAM}; got {beam}")
    work = n * best_of * max(1, beam)
    if work > MAX_CANDIDATES:
        raise ValueError(f"{n} poems x best-of {best_of}" + (f" x beam {beam}" if beam else "")
                         + f" = {work:,} candidates is more than one call writes ({MAX_CANDIDATES:,}); ask for fewer "
                         "poems (and call again with another seed) or a smaller best-of or beam")


def check_parallel(weight: float) -> None:
    """Refuse a parallelism weight that is not a number from 0 to MAX_PARALLEL, in one sentence."""
    if isinstance(weight, bool) or not isinstance(weight, int | float) or not 0 <= weight <= MAX_PARALLEL:
        raise ValueError(f"parallel is the nats a unit of association adds on a middle couplet's second line, "
                         f"from 0 (off) to {MAX_PARALLEL:g}; got {weight!r}")


def _rule_text(value: str | None) -> str | None:
    """A rule's setting as the user typed it: blank is unset, none/off is "no such rule"."""
    if value is None or not value.strip():
        return "auto"
    return None if value.strip().lower() in NO_RULE else value.strip()


def rules_from_options(form: str, template: str | None = "auto", rhyme: str | None = "auto",
                       acrostic: str | None = None, first_line: str | None = None, keywords: str | None = None,
                       max_uses: int | None = 2, parallel: float = PARALLEL_BONUS) -> VerseRules:
    """The rules a user asked for in words, read the same way on the command line and on the page: template and
    rhyme take a name, auto, or none/off; keywords are comma-separated (either comma); max_uses 0 is any;
    parallel is the middle couplets' parallelism weight (0: off)."""
    check_parallel(parallel)
    words = tuple(k.strip() for k in (keywords or "").replace("，", ",").split(",") if k.strip())
    return VerseRules(form=form, template=_rule_text(template), rhyme=_rule_text(rhyme),
                      acrostic=acrostic or None, first_line=first_line or None, keywords=words,
                      max_uses=max_uses or None, parallel=parallel)


def line_hash(line: str) -> int:
    """A 63-bit hash of one line, for the set of training lines a poem must not copy."""
    return int.from_bytes(hashlib.blake2b(line.encode("utf-8"), digest_size=8).digest(), "little") >> 1


class LineSet:
    """The training corpus's lines as a sorted array of hashes: membership without shipping the text."""

    def __init__(self, hashes: np.ndarray):
        self.hashes = np.unique(np.asarray(hashes, dtype=np.int64))

    @classmethod
    def from_lines(cls, lines: Sequence[str]) -> LineSet:
        return cls(np.fromiter((line_hash(x) for x in lines), dtype=np.int64, count=len(lines)))

    def __contains__(self, line: str) -> bool:
        h = line_hash(line)
        i = int(np.searchsorted(self.hashes, h))
        return i < len(self.hashes) and int(self.hashes[i]) == h

    def __len__(self) -> int:
        return len(self.hashes)

    def save(self, path: Path) -> None:
        from vaekit.runs import atomic_save_tensors

        atomic_save_tensors({"line_hashes": torch.from_numpy(self.hashes)}, path)

    @classmethod
    def load(cls, path: Path) -> LineSet | None:
        from safetensors.torch import load_file

        if not path.is_file():
            return None
        return cls(load_file(str(path))["line_hashes"].numpy())


@dataclass
class _Tables:
    """Per-vocabulary masks, built once: which tokens can be level, oblique, and each level group's tokens."""

    level: Tensor
    oblique: Tensor
    groups: dict[str, Tensor]
    token_groups: list[frozenset[str]]


def _tables(vocab: Vocabulary) -> _Tables:
    cached = getattr(vocab, "_verse_tables", None)
    if cached is not None:
        return cached
    book = pingshui()
    level = torch.tensor([LEVEL in book.tones.get(c, ()) for c in vocab.chars])
    oblique = torch.tensor([OBLIQUE in book.tones.get(c, ()) for c in vocab.chars])
    level[0] = oblique[0] = False  # the unknown mark has no tone
    token_groups = [frozenset(g for g in book.groups.get(c, ()) if book.group_tone[g] == LEVEL) for c in vocab.chars]
    token_groups[0] = frozenset()
    groups = {g: torch.tensor([g in tg for tg in token_groups]) for g, t in book.group_tone.items() if t == LEVEL}
    tables = _Tables(level, oblique, groups, token_groups)
    vocab._verse_tables = tables  # type: ignore[attr-defined]
    return tables


@dataclass
class _Plan:
    """One poem's rules laid out on positions: template, fixed tokens, rhyme positions, allowed rhyme groups."""

    template: Template | None
    fixed: dict[int, int]
    rhyme_positions: tuple[int, ...]
    groups: frozenset[str] | None  # allowed level groups (None: no rhyme rule)


class _Masker:
    """The allowed tokens at a position given the prefix: every rule of the plan as one boolean mask."""

    def __init__(self, vocab: Vocabulary, rules: VerseRules, lines: LineSet | None):
        self.vocab, self.rules, self.corpus_lines = vocab, rules, lines
        self.tables = _tables(vocab)
        self.chars, self.n_lines = FORM_CHARS[rules.form], FORM_LINES[rules.form]
        self.length = form_length(rules.form)
        self.base = torch.ones(len(vocab), dtype=torch.bool)
        self.base[0] = False  # never the unknown mark
        self._opposites: dict[int, Tensor] = {}

    def mask(self, plan: _Plan, prefix: list[int], counts: dict[int, int] | None = None) -> Tensor:
        """The allowed tokens at the next position; `counts` is `uses(plan, prefix)` where the caller has it."""
        p = len(prefix)
        if p in plan.fixed:
            m = torch.zeros(len(self.vocab), dtype=torch.bool)
            m[plan.fixed[p]] = True
            return m
        m = self.base.clone()
        line, col = divmod(p, self.chars)
        t = self.tables
        if plan.template is not None:
            need = _tone_needed(plan.template.lines[line], col, bool(t.level[prefix[p - 2]]) if col >= 2 else None)
            if need is not None:
                m &= t.level if need == LEVEL else t.oblique
        if p in plan.rhyme_positions and plan.groups is not None:
            allowed = self._groups_so_far(plan, prefix)
            if allowed:
                m &= t.level & torch.stack([t.groups[g] for g in allowed]).any(0)
            else:  # no group is left to rhyme in: nothing fits, and the caller says so
                m[:] = False
            for q in plan.rhyme_positions:
                if q < p:
                    m[prefix[q]] = False  # no rhyme character twice
                elif q > p and q in plan.fixed:
                    m[plan.fixed[q]] = False  # nor one a later line is fixed to end with (a keyword, say)
        if self.rules.no_doubles and col > 0:
            m[prefix[p - 1]] = False
        if self.rules.no_doubles and col < self.chars - 1 and (p + 1) in plan.fixed:
            m[plan.fixed[p + 1]] = False
        if self.rules.max_uses is not None:
            counts = self.uses(plan, prefix) if counts is None else counts
            m[[t for t, c in counts.items() if c >= self.rules.max_uses]] = False
        return m

    def parallel_bonus(self, prefix: list[int]) -> Tensor | None:
        """(V,) nats to add at the next position: `rules.parallel` times each character's association with the one
        opposite it in the couplet's first line, on the second line of a middle couplet; None elsewhere."""
        line = len(prefix) // self.chars
        if not self.rules.parallel or self.n_lines != 8 or line % 2 == 0 or line // 2 not in MIDDLE_COUPLETS:
            return None
        return self.rules.parallel * self._opposite(prefix[len(prefix) - self.chars])

    def _opposite(self, token: int) -> Tensor:
        row = self._opposites.get(token)
        if row is None:
            others, scores = association().row(self.vocab.chars[token])
            ids = [self.vocab.index.get(c) for c in others]
            keep = [i for i, t in enumerate(ids) if t is not None]
            row = torch.zeros(len(self.vocab))
            row[[ids[i] for i in keep]] = scores[keep]
            self._opposites[token] = row
        return row

    def add_bonus(self, logits: Tensor, prefixes: list[list[int]]) -> Tensor:
        """(B, V) logits with each row's parallelism bonus added (unchanged where none applies)."""
        bonus = [self.parallel_bonus(prefix) for prefix in prefixes]
        if all(b is None for b in bonus):
            return logits
        zero = torch.zeros(logits.shape[-1])
        return logits + torch.stack([zero if b is None else b for b in bonus])

    @staticmethod
    def uses(plan: _Plan, prefix: list[int]) -> dict[int, int]:
        """How often each character stands in the poem so far, counting those fixed at later positions."""
        counts: dict[int, int] = {}
        for t in prefix:
            counts[t] = counts.get(t, 0) + 1
        for q, t in plan.fixed.items():
            if q >= len(prefix):
                counts[t] = counts.get(t, 0) + 1
        return counts

    def _groups_so_far(self, plan: _Plan, prefix: list[int]) -> frozenset[str]:
        allowed = plan.groups or frozenset()
        for q in plan.rhyme_positions:
            if q < len(prefix):
                allowed = allowed & self.tables.token_groups[prefix[q]]
        return allowed

    def copies(self, prefix: list[int]) -> bool:
        """Whether the line just completed by `prefix` is a line of the training corpus."""
        if self.corpus_lines is None or len(prefix) % self.chars:
            return False
        line = "".join(self.vocab.chars[i] for i in prefix[-self.chars:])
        return line in self.corpus_lines


# ------------------------------------------------------------------ turning the user's rules into plans

def _token(vocab: Vocabulary, char: str, what: str) -> int:
    if char == vocab.chars[0]:
        raise ConstraintError(f"{what} {char!r} is the mark for an unknown character, not one a poem can hold; "
                              "choose a real character")
    if char in vocab.index:
        return vocab.index[char]
    try:  # the user may type simplified characters; the models are trained on traditional ones
        import opencc

        traditional = opencc.OpenCC("s2t").convert(char)
    except ImportError:
        traditional = char
    if traditional in vocab.index:
        return vocab.index[traditional]
    raise ConstraintError(f"{what} {char!r} is not among the {len(vocab) - 1:,} characters this model knows; "
                          "choose another character")


def _resolve_groups(rules: VerseRules, vocab: Vocabulary, needed: int) -> frozenset[str] | None:
    """The level rhyme groups allowed: those with enough characters in the vocabulary, or the one asked for."""
    if rules.rhyme is None:
        return None
    tables = _tables(vocab)
    eligible = {g for g, m in tables.groups.items() if int(m.sum()) >= needed + 1}
    if rules.rhyme == "auto":
        if not eligible:
            raise ConstraintError(f"no level rhyme group has {needed + 1} characters in this model's vocabulary of "
                                  f"{len(vocab) - 1}; train on more poems, or pass --rhyme none")
        return frozenset(eligible)
    book = pingshui()
    named = {g for g in tables.groups if rules.rhyme in g} if len(rules.rhyme) > 1 else set()
    if not named:
        named = {g for g in book.groups.get(rules.rhyme, ()) if book.group_tone[g] == LEVEL}
        if not named and (rules.rhyme in vocab.index or rules.rhyme in book.tones):
            raise ConstraintError(f"{rules.rhyme!r} has no level-tone rhyme group; regulated verse rhymes on level "
                                  "tones (try 東, 陽 or 山)")
    if not named:
        raise ConstraintError(f"no Pingshui rhyme group is named {rules.rhyme!r}; give a group such as 一東 or 七陽, "
                              "or one character of the group")
    usable = named & eligible
    if not usable:
        counts = ", ".join(f"{g} {int(tables.groups[g].sum())}" for g in sorted(named))
        raise ConstraintError(f"rhyme group {'/'.join(sorted(named))} has too few characters in this model's "
                              f"vocabulary ({counts}) for {needed} rhyming lines; choose another --rhyme or auto")
    return frozenset(usable)


def _candidate_templates(rules: VerseRules) -> list[Template]:
    all_templates = list(templates(rules.form))
    if rules.template in (None, "auto"):
        return all_templates
    chosen = [t for t in all_templates if t.name == rules.template or rules.template in t.name]
    if not chosen:
        names = ", ".join(t.name for t in all_templates)
        raise ConstraintError(f"no {rules.form} template is named {rules.template!r}; choose one of {names} or auto")
    return chosen


def _plan(rules: VerseRules, vocab: Vocabulary, generator: torch.Generator, guide: str | None = None) -> _Plan:
    """The rules laid out for one poem. With a `guide` (a poem of the form's length) the template is one the guide
    breaks least and the rhyme keeps the guide's group where it can, so that a poem told back keeps its own shape."""
    chars, n_lines = FORM_CHARS[rules.form], FORM_LINES[rules.form]
    fixed: dict[int, int] = {}
    if rules.acrostic is not None:
        heads = [c for c in rules.acrostic if not c.isspace()]
        if len(heads) != n_lines:
            raise ConstraintError(f"an acrostic for a {rules.form} needs {n_lines} characters, one a line; "
                                  f"got {len(heads)} ({rules.acrostic!r})")
        for i, c in enumerate(heads):
            fixed[i * chars] = _token(vocab, c, "acrostic character")
    if rules.first_line is not None:
        first = [c for c in rules.first_line if c not in " ，。,.!?！？；;"]
        if len(first) != chars:
            raise ConstraintError(f"the first line of a {rules.form} has {chars} characters; got {len(first)} "
                                  f"({rules.first_line!r})")
        for i, c in enumerate(first):
            if i in fixed and fixed[i] != _token(vocab, c, "first-line character"):
                raise ConstraintError("the first line and the acrostic disagree on the first character")
            fixed[i] = _token(vocab, c, "first-line character")
    candidates = _candidate_templates(rules) if rules.template is not None else [None]
    if rules.first_line is not None and rules.template is not None:  # the templates the given line fits best
        text = "".join(vocab.chars[fixed[i]] for i in range(chars))
        fewest = min(_line_breaks(text, t.lines[0]) for t in candidates)
        candidates = [t for t in candidates if _line_breaks(text, t.lines[0]) == fewest]
    if guide is not None and rules.template is not None:
        candidates = _fitting_templates(guide, candidates, rules.form)
    template = _draw_template(candidates, rules.form, generator) if rules.template is not None else None
    rhyme_lines = template.rhyme_lines if template is not None else tuple(range(1, n_lines, 2))
    rhyme_positions = tuple(i * chars + chars - 1 for i in rhyme_lines)
    groups = _resolve_groups(rules, vocab, len(rhyme_positions))
    if guide is not None and groups is not None:  # the guide's own rhyme group, where the rules allow it
        guided = groups.intersection(*(rhyme_groups(guide[q]) for q in rhyme_positions))
        groups = guided or groups
    plan = _Plan(template, fixed, rhyme_positions if groups is not None else (), groups)
    _fit_fixed_rhymes(plan, rules, vocab)
    _place_keywords(plan, rules, vocab, generator)
    return plan


def _fit_fixed_rhymes(plan: _Plan, rules: VerseRules, vocab: Vocabulary) -> None:
    """Narrow the rhyme groups to those of characters already fixed at rhyme positions (a given first line's
    last character, when the template rhymes line 1), or say plainly that the fixed character cannot rhyme."""
    if plan.groups is None:
        return
    tables = _tables(vocab)
    for q in plan.rhyme_positions:
        if q not in plan.fixed:
            continue
        narrowed = plan.groups & tables.token_groups[plan.fixed[q]]
        if not narrowed:
            char, line = vocab.chars[plan.fixed[q]], q // FORM_CHARS[rules.form] + 1
            name = f" {plan.template.name}" if plan.template is not None else ""
            raise ConstraintError(f"line {line} must rhyme on a level tone under the template{name}, but the "
                                  f"character given there, {char!r}, does not rhyme with the others; choose a "
                                  "template whose first line does not rhyme (…首句不入韵), another --rhyme, or "
                                  "--rhyme none")
        plan.groups = narrowed


def _fitting_templates(guide: str, candidates: list[Template], form: str) -> list[Template]:
    """The candidates under which the guide poem breaks the fewest rules (tone, rhyme, ...), as `verse.check` judges."""
    if len(guide) != form_length(form):
        raise ValueError(f"a guide for a {form} has {form_length(form)} characters; got {len(guide)}")
    breaks = [len(check(guide, form, template=t.name).breaks) for t in candidates]
    return [t for t, b in zip(candidates, breaks, strict=True) if b == min(breaks)]


def _line_breaks(line: str, pattern: str) -> int:
    """Fixed positions where a given line's tone differs from the pattern (unlisted characters fit anything)."""
    return sum(bool(tones(line[i])) and pattern[i] not in tones(line[i]) for i in fixed_positions(len(line)))


def _draw_template(candidates: list[Template | None], form: str, generator: torch.Generator) -> Template | None:
    counts = TEMPLATE_COUNTS.get(form, {})
    weights = torch.tensor([float(counts.get(t.name, 1)) if t is not None else 1.0 for t in candidates])
    return candidates[int(torch.multinomial(weights, 1, generator=generator))]


def _tone_needed(pattern: str, col: int, core_first_level: bool | None) -> str | None:
    """The tone a character at `col` of a line of this pattern must take, or None if any will do: the template's
    tone at the ruled positions (the 2nd, 4th, 6th and last), and at the core's third character the tone that
    avoids 三平尾 (before 平平) and 孤平 (in 平平仄仄平, a level third character unless the core's first one, two
    places back, is level; when that one is not yet known, `core_first_level` None, level is the safe choice)."""
    if col in fixed_positions(len(pattern)):
        return pattern[col]
    core_col, core = col - (len(pattern) - 5), pattern[-5:]
    if core_col == 2 and core == "仄仄仄平平":
        return OBLIQUE  # a level tone here would end the line in 三平尾
    if core_col == 2 and core == "平平仄仄平" and not core_first_level:
        return LEVEL  # the core's first character is oblique (or unknown): this one must be level, or 孤平
    return None


def _tone_fits(pattern: str, col: int, token: int, tables: _Tables) -> bool:
    """Whether a character fixed at `col` of a line of this pattern keeps the tone rules whatever is written
    around it, which the masks cannot repair later."""
    need = _tone_needed(pattern, col, None)
    return need is None or bool((tables.level if need == LEVEL else tables.oblique)[token])


def _place_keywords(plan: _Plan, rules: VerseRules, vocab: Vocabulary, generator: torch.Generator) -> None:
    """Fix each required keyword at a random position where its tone and rhyme fit the plan."""
    chars = FORM_CHARS[rules.form]
    tables = _tables(vocab)
    for word in rules.keywords:
        token = _token(vocab, word, "keyword")
        options = []
        for p in range(form_length(rules.form)):
            line, col = divmod(p, chars)
            if p in plan.fixed or (col > 0 and plan.fixed.get(p - 1) == token) or plan.fixed.get(p + 1) == token:
                continue
            if plan.template is not None and not _tone_fits(plan.template.lines[line], col, token, tables):
                continue
            if p in plan.rhyme_positions and not (plan.groups or frozenset()) & tables.token_groups[token]:
                continue
            options.append(p)
        if not options:
            raise ConstraintError(f"keyword {word!r} fits no free position of this {rules.form}'s template; "
                                  "drop it or choose another --template")
        choice = options[int(torch.randint(len(options), (1,), generator=generator))]
        plan.fixed[choice] = token
        if choice in plan.rhyme_positions and plan.groups is not None:
            plan.groups = plan.groups & tables.token_groups[token]


# ------------------------------------------------------------------ decoding

def _sample_rows(logits: Tensor, temperature: float, top_p: float, generator: torch.Generator) -> Tensor:
    """One token per row of (n, V) logits: argmax (temperature 0), or sampled from the top-p head. The rows'
    maxima are subtracted first, so no temperature in range overflows; a masked (-inf) token is never drawn."""
    if temperature <= 0:
        return logits.argmax(-1)
    shifted = logits - logits.max(-1, keepdim=True).values
    return nucleus_sample(torch.softmax(shifted / temperature, dim=-1), top_p, generator)


def _sample(logits: Tensor, temperature: float, top_p: float, generator: torch.Generator) -> int:
    return int(_sample_rows(logits[None], temperature, top_p, generator)[0])


def _fit_z(model: torch.nn.Module, plan: _Plan, generator: torch.Generator, y: Tensor | None = None) -> Tensor:
    """A draw from the prior p(z) (p(z | theme) for a themed model); for a non-autoregressive model, the one of
    Z_CANDIDATES drawn that gives the fixed characters most mass."""
    count = Z_CANDIDATES if plan.fixed else 1
    if hasattr(model, "sample_prior"):
        z = model.sample_prior(count, None if y is None else y.expand(count), generator).cpu()
    else:
        z = torch.randn(count, model.latent_dim, generator=generator)
    if not plan.fixed or not getattr(model, "parallel", False):  # a causal decoder reads fixed characters itself
        return z[:1]
    positions = torch.tensor(sorted(plan.fixed))
    tokens = torch.tensor([plan.fixed[int(p)] for p in positions])
    with torch.no_grad():
        theme = None if y is None else y.expand(count)
        logp = torch.log_softmax(model.logits(z.to(_device(model)), theme)[:, positions].cpu(), dim=-1)
    score = logp.gather(2, tokens.expand(len(z), -1).unsqueeze(-1)).squeeze(-1).sum(1)
    return z[int(score.argmax())].unsqueeze(0)


def _device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def _step_decoder(model: torch.nn.Module, z: Tensor, y: Tensor | None) -> Callable[[Tensor], Tensor]:
    """The model's step-wise decoder at z (and theme y, for a themed model)."""
    z = z.to(_device(model))
    return model.step_decoder(z) if y is None else model.step_decoder(z, y.to(z.device).expand(len(z)))


def _copies(masker: _Masker, plan: _Plan, prefix: list[int], token: int) -> bool:
    """Whether `token` would complete a line of the training corpus (a line the user fixed may be one)."""
    return len(prefix) not in plan.fixed and masker.copies(prefix + [token])


def _stuck(position: int) -> ConstraintError:
    return ConstraintError(f"no character this model knows fits position {position + 1} under the rules asked "
                           "for; relax --keywords, --rhyme or --template")


def _choose(logits: Tensor, plan: _Plan, prefix: list[int], masker: _Masker, temperature: float, top_p: float,
            generator: torch.Generator) -> int:
    """The next character of one poem: sampled among those the rules allow, never completing a corpus line
    (after 64 draws that would, the last is kept)."""
    allowed = masker.mask(plan, prefix)
    for _ in range(64):
        if not bool(allowed.any()):
            raise _stuck(len(prefix))
        token = _sample(logits.masked_fill(~allowed, -math.inf), temperature, top_p, generator)
        if not _copies(masker, plan, prefix, token):
            return token
        allowed[token] = False  # that would copy a line of the corpus: try the next choice
    return token


def _penalise(logits: Tensor, counts: list[dict[int, int]], penalty: float) -> Tensor:
    """(B, V) logits less `penalty` for each character already in its poem (or fixed later in it): `counts` are
    each row's `_Masker.uses`."""
    if penalty == 0:
        return logits
    used = torch.zeros_like(logits, dtype=torch.bool)
    for row, held in enumerate(counts):
        used[row, list(held)] = True
    return torch.where(used, logits - penalty, logits)  # not penalty * used: a huge penalty times 0 is NaN


def _decode_batch(model: torch.nn.Module, z: Tensor, plans: list[_Plan], masker: _Masker, temperature: float,
                  top_p: float, generator: torch.Generator, y: Tensor | None = None,
                  repeat_penalty: float = 0.0) -> list[list[int]]:
    """Sample len(plans) poems position by position: one model step for all of them, the rules per poem."""
    step = _step_decoder(model, z, y)
    prefixes: list[list[int]] = [[] for _ in plans]
    for _ in range(masker.length):
        logits = step(torch.tensor(prefixes, dtype=torch.long, device=_device(model)).view(len(plans), -1))
        counts = [_Masker.uses(plan, prefix) for plan, prefix in zip(plans, prefixes, strict=True)]
        logits = masker.add_bonus(_penalise(logits.float().cpu(), counts, repeat_penalty), prefixes)
        allowed = torch.stack([masker.mask(plan, prefix, held)
                               for plan, prefix, held in zip(plans, prefixes, counts, strict=True)])
        if not bool(allowed.any(-1).all()):
            raise _stuck(len(prefixes[0]))
        tokens = _sample_rows(logits.masked_fill(~allowed, -math.inf), temperature, top_p, generator).tolist()
        for i, (token, plan, prefix) in enumerate(zip(tokens, plans, prefixes, strict=True)):
            if _copies(masker, plan, prefix, token):  # rare: choose again, alone
                token = _choose(logits[i], plan, prefix, masker, temperature, top_p, generator)
            prefix.append(token)
    return prefixes


def _beam_one(model: torch.nn.Module, z: Tensor, plan: _Plan, masker: _Masker, width: int,
              y: Tensor | None = None, repeat_penalty: float = 0.0) -> list[int]:
    step = _step_decoder(model, z.expand(width, -1), y)
    beams: list[tuple[float, list[int]]] = [(0.0, [])]
    for _ in range(masker.length):
        rows = [b[1] for b in beams] + [beams[0][1]] * (width - len(beams))
        logp = torch.log_softmax(step(torch.tensor(rows, dtype=torch.long, device=_device(model))).float().cpu(), -1)
        logp = masker.add_bonus(_penalise(logp, [_Masker.uses(plan, row) for row in rows], repeat_penalty), rows)
        candidates: list[tuple[float, list[int]]] = []
        for (score, prefix), row in zip(beams, logp, strict=False):
            allowed = masker.mask(plan, prefix)
            masked = row.masked_fill(~allowed, -math.inf)
            top = masked.topk(min(width * 2, int(allowed.sum())))
            for value, token in zip(top.values.tolist(), top.indices.tolist(), strict=True):
                if not _copies(masker, plan, prefix, token):
                    candidates.append((score + value, prefix + [token]))
        if not candidates:
            raise ConstraintError("no poem fits the rules asked for with this model; relax --keywords or --rhyme")
        beams = sorted(candidates, key=lambda c: -c[0])[:width]
    return beams[0][1]


@torch.no_grad()
def decode(model: torch.nn.Module, n: int, rules: VerseRules, temperature: float = SAMPLING.temperature,
           top_p: float = SAMPLING.top_p, beam: int = SAMPLING.beam, generator: torch.Generator | None = None,
           lines: LineSet | None = None, theme: int | None = None, z: Tensor | None = None,
           guides: Sequence[str] | None = None, repeat_penalty: float = SAMPLING.repeat_penalty) -> list[str]:
    """n poems that keep `rules`: sampled (temperature, top-p; 0 is argmax) or by beam search (beam > 1),
    each character the poem already holds `repeat_penalty` nats less likely (before the temperature);
    a themed model writes to `theme` (an index into its themes). With `z` (n, latent) the poems are written
    from those codes instead of draws from the prior; with `guides` (one poem text each) every poem's plan takes
    the template its guide breaks least and the guide's rhyme group, as telling a poem back wants."""
    vocab: Vocabulary = model.vocab
    if model.length != form_length(rules.form):
        raise ConstraintError(f"this model writes {model.length}-character poems, not a {rules.form}")
    generator = generator if generator is not None else torch.Generator().manual_seed(int(torch.randint(2**31, ())))
    masker = _Masker(vocab, rules, lines)
    y = None if theme is None else torch.tensor([theme])
    if rules.max_uses is not None and rules.max_uses < 1:
        raise ValueError(f"max_uses is how often a character may stand in a poem, 1 or more (None: any); got "
                         f"{rules.max_uses}")
    check_sampling(1, temperature, top_p, beam if beam > 1 else 0, 1, repeat_penalty)  # n is the caller's to bound
    check_parallel(rules.parallel)
    if z is not None and len(z) != n:
        raise ValueError(f"decode was asked for {n} poems but given {len(z)} codes")
    if guides is not None and len(guides) != n:
        raise ValueError(f"decode was asked for {n} poems but given {len(guides)} guides")
    out: list[list[int]] = []
    for start in range(0, n, DECODE_BATCH):
        count = min(DECODE_BATCH, n - start)  # a plan's rhyme groups narrow as its poem is written: one each
        plans = [_plan(rules, vocab, generator, None if guides is None else guides[start + i]) for i in range(count)]
        zs = ([_fit_z(model, plan, generator, y) for plan in plans] if z is None
              else list(z[start:start + count].cpu().split(1)))
        if beam > 1:
            out += [_beam_one(model, code, plan, masker, beam, y, repeat_penalty)
                    for code, plan in zip(zs, plans, strict=True)]
        else:
            out += _decode_batch(model, torch.cat(zs), plans, masker, temperature, top_p, generator, y,
                                 repeat_penalty)
    return ["".join(vocab.chars[i] for i in ids) for ids in out]
