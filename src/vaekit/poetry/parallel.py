"""Parallelism (對仗) of a couplet, learned from the corpus: how strongly the characters standing at the same
place of its two lines go together in the middle couplets of regulated verse.

The association of two characters a, b is their pointwise mutual information over aligned pairs, log(n(a, b) N /
(n(a) n(b))), counted in both orders over every middle couplet (頷聯, 頸聯) of the Song dynasty's regulated
poems in the corpus (the Tang poems that models are scored on take no part in it); pairs seen fewer than
MIN_PAIR_COUNT times, or with a negative association, or of one character with itself, score 0. A couplet's
parallelism is the mean over its positions. It is the score the decoder adds, weighted, while writing the second
line of each middle couplet, and the one `verse.check` and the benchmarks report, so both speak of one measure.
`scripts/parallel_table.py` builds the table (`shipped/parallel/association.safetensors`).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from functools import lru_cache
from importlib import resources
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

from vaekit.data.errors import DataError

__all__ = ["Association", "association", "build_association", "middle_couplets", "couplet_lines",
           "MIN_PAIR_COUNT", "TABLE_FILE", "MIDDLE_COUPLETS"]

MIN_PAIR_COUNT = 3  # a pair seen fewer times says more about chance than about parallelism
MAX_SCORE = 8.0  # PMI of pairs seen a few times only is capped, so one rare pair cannot carry a line
MIDDLE_COUPLETS = (1, 2)  # zero-based couplets of an eight-line poem that are parallel: 頷聯 and 頸聯
TABLE_FILE = "association.safetensors"


def couplet_lines(text: str, chars: int) -> list[tuple[str, str]]:
    """The couplets (line pairs) of a punctuation-free poem whose lines have `chars` characters."""
    lines = [text[i:i + chars] for i in range(0, len(text), chars)]
    return [(lines[i], lines[i + 1]) for i in range(0, len(lines) - 1, 2)]


def middle_couplets(text: str, chars: int) -> list[tuple[str, str]]:
    """The 頷聯 and 頸聯 of an eight-line poem."""
    couplets = couplet_lines(text, chars)
    return [couplets[i] for i in MIDDLE_COUPLETS if i < len(couplets)]


class Association:
    """Character pairs -> association score (0 for pairs not listed), over characters given as strings."""

    def __init__(self, chars: list[str], pairs: Tensor, scores: Tensor):
        self.chars = chars
        self.index = {c: i for i, c in enumerate(chars)}
        self.pairs, self.scores = pairs.long(), scores.float()
        self._table = {(int(a), int(b)): float(s) for (a, b), s in zip(self.pairs.tolist(), self.scores, strict=True)}
        self._rows: dict[int, tuple[Tensor, Tensor]] = {}

    def __len__(self) -> int:
        return len(self._table)

    def score(self, a: str, b: str) -> float:
        """How strongly a and b stand at the same place of two parallel lines (0: no evidence)."""
        i, j = self.index.get(a), self.index.get(b)
        return 0.0 if i is None or j is None else self._table.get((i, j), 0.0)

    def couplet(self, first: str, second: str) -> float:
        """A couplet's parallelism: the mean score of its aligned characters."""
        if len(first) != len(second) or not first:
            raise ValueError(f"a couplet's lines have one length; got {len(first)} and {len(second)}")
        return sum(self.score(a, b) for a, b in zip(first, second, strict=True)) / len(first)

    def row(self, a: str) -> tuple[list[str], Tensor]:
        """The characters that go with a, and their scores."""
        i = self.index.get(a)
        if i is None:
            return [], torch.zeros(0)
        if i not in self._rows:
            hit = self.pairs[:, 0] == i
            self._rows[i] = (self.pairs[hit, 1], self.scores[hit])
        others, scores = self._rows[i]
        return [self.chars[j] for j in others.tolist()], scores

    def save(self, path: Path) -> None:
        codes = torch.tensor([ord(c) for c in self.chars], dtype=torch.int32)
        save_file({"chars": codes, "pairs": self.pairs.int(), "scores": self.scores.half()}, str(path))

    @classmethod
    def load(cls, path: Path) -> Association:
        tensors = load_file(str(path))
        chars, pairs, scores = tensors.get("chars"), tensors.get("pairs"), tensors.get("scores")
        if (chars is None or pairs is None or scores is None or pairs.ndim != 2 or pairs.shape[1:] != (2,)
                or scores.shape != (len(pairs),) or (len(pairs) and int(pairs.max()) >= len(chars))):
            raise DataError(f"{path}: not an association table (chars, pairs (n, 2), scores (n,)); rebuild it "
                            "with scripts/parallel_table.py")
        return cls([chr(int(c)) for c in chars.tolist()], pairs, scores)


def build_association(couplets: Iterable[tuple[str, str]], min_count: int = MIN_PAIR_COUNT) -> Association:
    """The association table of aligned characters over these couplets, counted in both orders."""
    pair_counts: Counter[tuple[str, str]] = Counter()
    for first, second in couplets:
        for a, b in zip(first, second, strict=True):
            if a != b:
                pair_counts[a, b] += 1
                pair_counts[b, a] += 1
    marginal: Counter[str] = Counter()
    for (a, _), n in pair_counts.items():
        marginal[a] += n
    total = sum(pair_counts.values())
    chars = sorted(marginal)
    index = {c: i for i, c in enumerate(chars)}
    pairs, scores = [], []
    for (a, b), n in sorted(pair_counts.items()):
        if n < min_count:
            continue
        pmi = math.log(n * total / (marginal[a] * marginal[b]))
        if pmi > 0:
            pairs.append((index[a], index[b]))
            scores.append(min(pmi, MAX_SCORE))
    return Association(chars, torch.tensor(pairs, dtype=torch.long).view(-1, 2), torch.tensor(scores))


def shipped_table() -> Path:
    """Where the shipped association table lives in the package."""
    return Path(str(resources.files("vaekit.poetry") / "shipped" / "parallel" / TABLE_FILE))


@lru_cache(maxsize=1)
def association() -> Association:
    """The shipped association table (built from the Song regulated poems by scripts/parallel_table.py)."""
    path = shipped_table()
    if not path.is_file():
        raise DataError(f"{path}: the parallelism table is missing; reinstall vaekit")
    return Association.load(path)
