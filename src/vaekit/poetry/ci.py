"""Writing ci (词) to a tune: the ci model is a CVAE whose label is the tune, and the constrained decoder keeps
the tune's line lengths, the tone at each place it fixes, and its rhyme sets (one 词林正韵 part a set, no rhyme
character twice in it), sharing the sampling, the repetition penalty and the no-copy rule with the verse forms.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import torch
from torch import Tensor

from vaekit.data.poetry import CI, CI_PAD, Vocabulary, is_han, poem_chars
from vaekit.poetry.decode import (
    DECODE_BATCH,
    SAMPLING,
    ConstraintError,
    LineSet,
    _decode_batch,
    _fit_z,
    check_sampling,
)
from vaekit.poetry.tunes import FREE, Tune, check_ci, cilin_parts, find_tune, simplified_tones, tunes
from vaekit.poetry.verse import LEVEL, OBLIQUE
from vaekit.seeds import check_seed

__all__ = ["write_ci", "interpolate_ci", "encode_ci", "ci_metrics", "CI_MAX_USES", "MIN_COPIED_LINE", "tune_label",
           "is_ci_model"]

CI_MAX_USES = 3  # a character at most this often in a ci (Song ci repeat more than a quatrain can)
MIN_COPIED_LINE = 4  # lines shorter than this recur across Song ci by nature (何处是, 君知否): not counted as copies


def is_ci_model(model: torch.nn.Module) -> bool:
    """Whether a loaded poem model writes ci (its run's form)."""
    config = getattr(model, "run_config", None)
    return config is not None and config.poem.form == CI


def tune_label(model: torch.nn.Module, tune: Tune) -> int:
    """The model's label for a tune, by name (the tunes it was trained on are its class names)."""
    names = list(getattr(model.run_config, "class_names", None) or [])
    if tune.name not in names:
        raise ConstraintError(f"this ci model was not trained on the tune {tune.name}; choose one of "
                              f"{'、'.join(names[:8])}{'…' if len(names) > 8 else ''}")
    return names.index(tune.name)


def _ci_tables(vocab: Vocabulary) -> tuple[Tensor, Tensor, list[frozenset[str]], dict[str, Tensor]]:
    """Per-vocabulary masks, built once: level and oblique tokens, each token's 词林正韵 parts, each part's tokens."""
    cached = getattr(vocab, "_ci_tables", None)
    if cached is None:
        tones = [simplified_tones(c) for c in vocab.chars]
        parts = [cilin_parts(c) for c in vocab.chars]
        cached = (torch.tensor([LEVEL in t for t in tones]), torch.tensor([OBLIQUE in t for t in tones]), parts,
                  {p: torch.tensor([p in tp for tp in parts]) for p in frozenset().union(*parts)})
        vocab._ci_tables = cached  # type: ignore[attr-defined]
    return cached


@dataclass
class _CiPlan:
    """One ci's rules laid out on positions: the tune, characters fixed in advance (none yet), and each rhyme
    set's 词林正韵 parts still open."""

    tune: Tune
    fixed: dict[int, int] = field(default_factory=dict)
    parts: list[frozenset[str]] = field(default_factory=list)


class _CiMasker:
    """The allowed tokens at a position of a ci, given its prefix (the interface `decode._decode_batch` drives)."""

    def __init__(self, vocab: Vocabulary, tune: Tune, lines: LineSet | None, max_uses: int | None = CI_MAX_USES):
        self.vocab, self.tune, self.corpus_lines, self.max_uses = vocab, tune, lines, max_uses
        self.length = tune.chars
        self.level, self.oblique, self.token_parts, self.part_masks = _ci_tables(vocab)
        self.all_parts = frozenset(self.part_masks)
        self.base = torch.ones(len(vocab), dtype=torch.bool)
        self.base[0] = False  # never the unknown mark
        if CI_PAD in vocab.index:
            self.base[vocab.index[CI_PAD]] = False  # nor the padding after a ci
        self.place: list[tuple[int, int]] = [(i, j) for i, n in enumerate(tune.lines) for j in range(n)]
        self.set_of_line = {i: k for k, group in enumerate(tune.rhymes) for i in group}
        self.line_end = {sum(tune.lines[:i + 1]) - 1: i for i in range(len(tune.lines))}
        self.viable = [self._viable_parts(k) for k in range(len(tune.rhymes))]

    def _viable_parts(self, k: int) -> frozenset[str]:
        """The parts a rhyme set can take: enough distinct characters of each tone its ends ask for (西江月 asks
        level and oblique ends of one part, which an entering-tone part cannot give)."""
        asked = Counter(self.tune.tones[i][-1] for i in self.tune.rhymes[k])
        usable = self.base
        out = set()
        for part, members in self.part_masks.items():
            have = {LEVEL: int((members & self.level & usable).sum()), OBLIQUE: int((members & self.oblique & usable).sum()),
                    FREE: int((members & usable).sum())}
            if all(have[tone] > 2 * n for tone, n in asked.items()):
                out.add(part)
        return frozenset(out)

    def plan(self) -> _CiPlan:
        return _CiPlan(self.tune, {}, list(self.viable))

    def _set_ends(self, k: int) -> list[int]:
        return [sum(self.tune.lines[:i + 1]) - 1 for i in self.tune.rhymes[k]]

    def mask(self, plan: _CiPlan, prefix: list[int], counts: dict[int, int] | None = None) -> Tensor:
        p = len(prefix)
        line, col = self.place[p]
        m = self.base.clone()
        need = self.tune.tones[line][col]
        if need != FREE:
            m &= self.level if need == LEVEL else self.oblique
        k = self.set_of_line.get(line) if p in self.line_end else None
        if k is not None:
            allowed = plan.parts[k]
            for q in self._set_ends(k):
                if q < p:
                    allowed = allowed & self.token_parts[prefix[q]]
                    m[prefix[q]] = False  # no rhyme character twice in a set
            m &= torch.stack([self.part_masks[g] for g in allowed]).any(0) if allowed else torch.zeros_like(m)
        if self.max_uses is not None:
            counts = self.uses(plan, prefix) if counts is None else counts
            m[[t for t, c in counts.items() if c >= self.max_uses]] = False
        return m

    @staticmethod
    def uses(plan: _CiPlan, prefix: list[int]) -> dict[int, int]:
        counts: dict[int, int] = {}
        for t in prefix:
            counts[t] = counts.get(t, 0) + 1
        return counts

    def copies(self, prefix: list[int]) -> bool:
        """Whether the line just completed by `prefix` is a training line of MIN_COPIED_LINE or more characters."""
        end = self.line_end.get(len(prefix) - 1)
        if self.corpus_lines is None or end is None or self.tune.lines[end] < MIN_COPIED_LINE:
            return False
        line = "".join(self.vocab.chars[i] for i in prefix[-self.tune.lines[end]:])
        return line in self.corpus_lines

    def add_bonus(self, logits: Tensor, prefixes: list[list[int]]) -> Tensor:
        return logits


def write_ci(model: torch.nn.Module, tune: str | Tune, n: int = 3, seed: int | None = None,
             temperature: float = SAMPLING.temperature, top_p: float = SAMPLING.top_p,
             repeat_penalty: float = SAMPLING.repeat_penalty, max_uses: int | None = CI_MAX_USES,
             rules: bool = True) -> list[str]:
    """n ci (punctuation-free, simplified characters) to `tune` (a name in simplified or traditional characters),
    from z ~ p(z | tune): with `rules` the tune's tones and rhymes are kept; without, only its length."""
    check_sampling(n, temperature, top_p, 0, 1, repeat_penalty)
    tune = find_tune(tune) if isinstance(tune, str) else tune
    label = tune_label(model, tune)
    generator = torch.Generator().manual_seed(check_seed(seed) if seed is not None
                                              else int(torch.randint(2**31, ())))
    masker = _CiMasker(model.vocab, tune, getattr(model, "corpus_lines", None), max_uses)
    if not rules:
        free = _FreeMasker(masker)
    y = torch.tensor([label])
    out: list[list[int]] = []
    with torch.no_grad():
        for start in range(0, n, DECODE_BATCH):
            count = min(DECODE_BATCH, n - start)
            plans = [masker.plan() for _ in range(count)]
            zs = torch.cat([_fit_z(model, plan, generator, y) for plan in plans])  # type: ignore[arg-type]
            out += _decode_batch(model, zs, plans, masker if rules else free, temperature, top_p,  # type: ignore[arg-type]
                                 generator, y, repeat_penalty)
    return ["".join(model.vocab.chars[i] for i in ids) for ids in out]


def encode_ci(model: torch.nn.Module, text: str, tune: Tune) -> Tensor:
    """Token ids (1, CI_LENGTH) of a ci of `tune` (punctuation optional); ValueError in one sentence otherwise."""
    chars = poem_chars(text)
    if not chars or not is_han(chars):
        raise ValueError(f"{text[:30]!r} is not a ci: give its Chinese characters, with or without punctuation")
    if len(chars) != tune.chars:
        raise ValueError(f"a ci to {tune.name} has {tune.chars} characters; {text[:30]!r} has {len(chars)}")
    return model.vocab.encode([chars.ljust(model.length, CI_PAD)])


@torch.no_grad()
def interpolate_ci(model: torch.nn.Module, a: str, b: str, tune: str | Tune, steps: int = 6) -> list[str]:
    """Ci decoded (argmax, the tune's rules kept) at points on the line between two ci's posterior means."""
    tune = find_tune(tune) if isinstance(tune, str) else tune
    y = torch.tensor([tune_label(model, tune)])
    ends = [model.posterior(encode_ci(model, text, tune), y).mean[0] for text in (a, b)]
    t = torch.linspace(0, 1, steps)[:, None]
    path = (1 - t) * ends[0] + t * ends[1]
    masker = _CiMasker(model.vocab, tune, getattr(model, "corpus_lines", None))
    ids = _decode_batch(model, path, [masker.plan() for _ in range(steps)], masker, 0.0, 1.0,  # type: ignore[arg-type]
                        torch.Generator().manual_seed(0), y, SAMPLING.repeat_penalty)
    return ["".join(model.vocab.chars[i] for i in row) for row in ids]


def ci_metrics(texts: list[tuple[str, int]], train_lines: set[str] | LineSet | None) -> dict[str, float | None]:
    """How ci measure, written or from the corpus, as (text, tune index) pairs: the share keeping the tune, distinct-2
    within lines, lines of MIN_COPIED_LINE or more characters copied from training, repeats per character."""
    shipped = tunes()
    cut = [(t[:shipped[k].chars], shipped[k]) for t, k in texts]
    lines = [line for t, tune in cut for line in tune.split(t)]
    grams = [line[i:i + 2] for line in lines for i in range(len(line) - 1)]
    long_lines = [line for line in lines if len(line) >= MIN_COPIED_LINE]
    copied = None if train_lines is None else sum(line in train_lines for line in long_lines) / max(1, len(long_lines))
    return {"tune_kept": sum(not check_ci(t, tune) for t, tune in cut) / max(1, len(cut)),
            "distinct_2": len(set(grams)) / max(1, len(grams)), "copied_lines": copied,
            "repeats_per_char": sum(sum(c - 1 for c in Counter(t).values()) / len(t) for t, _ in cut) / max(1, len(cut))}


class _FreeMasker(_CiMasker):
    """Only the tune's length and real characters: what the model writes with no rule of the tune."""

    def __init__(self, ruled: _CiMasker):  # shares the ruled masker's tables
        self.__dict__.update(ruled.__dict__)

    def mask(self, plan: _CiPlan, prefix: list[int], counts: dict[int, int] | None = None) -> Tensor:
        return self.base.clone()

