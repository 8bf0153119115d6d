"""Poem themes, read from titles, for the themed CVAE, and a small classifier that reads a theme from the text.

The rule: a poem's theme is the first of THEMES whose marker characters occur in its title (so 秋夜送友 is a
farewell poem: parting is what the poem is for, the season is its setting); a title with none is `other`.
Both four-line halves of a regulated poem take its title's theme; the four-line stanzas of longer poems, which
train beside them, are `other` (a middle stanza carries its title's theme too faintly: docs/history.md).

The classifier is the yardstick for the themed CVAE, as the digit classifier is for the image CVAE: trained on
the texts (not the titles) of the training split, class-balanced, it reads poems written to each theme.
Its weights ship in `poetry/shipped/themes/`, trained by `scripts/train_theme_classifier.py`.
"""

from __future__ import annotations

import json
from collections import Counter
from importlib import resources
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import Tensor, nn

from vaekit.data.poetry import Vocabulary
from vaekit.runs import atomic_save_weights, atomic_write_text, round_weights

__all__ = ["THEMES", "THEME_NAMES", "OTHER", "theme_of", "theme_index", "ThemeClassifier", "train_theme_classifier",
           "load_theme_classifier", "classifier_dir", "theme_accuracy"]

# (name, characters that mark it in a title), in order of precedence; `other` catches the rest
THEMES: tuple[tuple[str, str], ...] = (
    ("farewell", "送別别"),
    ("frontier", "塞邊边征戍"),
    ("autumn", "秋"),
    ("spring", "春"),
    ("moon", "月"),
    ("landscape", "山江"),
    ("other", ""),
)
THEME_NAMES = tuple(name for name, _ in THEMES)
OTHER = len(THEMES) - 1  # the catch-all's index: titles with no marker, and the stanzas of longer poems


def theme_of(title: str) -> int:
    """The index of a title's theme under the rule above."""
    for i, (_, marks) in enumerate(THEMES):
        if marks and any(c in title for c in marks):
            return i
    return OTHER


def theme_index(name: str | int) -> int:
    """A theme given by name (farewell, autumn, ...) or index; ValueError names the choices."""
    if isinstance(name, int) or str(name).isdigit():
        i = int(name)
        if 0 <= i < len(THEMES):
            return i
    elif name in THEME_NAMES:
        return THEME_NAMES.index(name)
    raise ValueError(f"theme must be one of {', '.join(THEME_NAMES)}; got {name!r}")


class ThemeClassifier(nn.Module):
    """Mean of character embeddings (a bag of characters) -> hidden layer -> theme logits."""

    def __init__(self, vocab_size: int, dim: int = 64, themes: int = len(THEMES)):
        super().__init__()
        self.embed = nn.EmbeddingBag(vocab_size, dim, mode="mean")
        self.hidden = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, themes)

    def forward(self, ids: Tensor) -> Tensor:  # ids: (B, L) token ids
        return self.out(F.relu(self.hidden(self.embed(ids))))


def classifier_dir() -> Path:
    """Where the shipped theme classifier lives."""
    return Path(str(resources.files("vaekit.poetry") / "shipped" / "themes"))


def train_theme_classifier(texts: list[str], themes: list[int], out: Path, epochs: int = 8, dim: int = 64,
                           lr: float = 3e-3, seed: int = 0) -> ThemeClassifier:
    """Fit on (text, theme) pairs with class-balanced weights; write weights and vocabulary to `out`."""
    torch.manual_seed(seed)
    vocab = Vocabulary.build(texts, min_count=2)
    x = vocab.encode(texts)  # texts of one form: one length
    y = torch.tensor(themes)
    counts = Counter(themes)
    weight = torch.tensor([len(themes) / (len(THEMES) * max(1, counts[i])) for i in range(len(THEMES))])
    model = ThemeClassifier(len(vocab), dim)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-2)
    for _ in range(epochs):
        for idx in torch.randperm(len(x)).split(128):
            loss = F.cross_entropy(model(x[idx]), y[idx], weight=weight)
            opt.zero_grad()
            loss.backward()
            opt.step()
    round_weights(model, torch.float16)  # stored in float16 (the weights budget): the model returned is that copy
    out.mkdir(parents=True, exist_ok=True)
    atomic_save_weights(model, out / "classifier.safetensors", dtype=torch.float16)
    atomic_write_text(out / "classifier.json", json.dumps({"chars": vocab.chars, "dim": dim, "themes": THEME_NAMES,
                                                           "epochs": epochs, "lr": lr, "seed": seed},
                                                          ensure_ascii=False))
    model.vocab = vocab
    return model.eval()


def load_theme_classifier(folder: Path | None = None) -> ThemeClassifier:
    """The shipped theme classifier (or one written by `train_theme_classifier`), with `.vocab` attached."""
    folder = folder or classifier_dir()
    meta = json.loads((folder / "classifier.json").read_text(encoding="utf-8"))
    model = ThemeClassifier(len(meta["chars"]), meta["dim"])
    model.load_state_dict(load_file(str(folder / "classifier.safetensors")))
    model.vocab = Vocabulary(meta["chars"])
    return model.eval()


@torch.no_grad()
def theme_accuracy(classifier: ThemeClassifier, texts: list[str], themes: list[int]) -> dict[str, float]:
    """Share of texts the classifier reads as their theme: overall, and per theme (its recall)."""
    pred = classifier(classifier.vocab.encode(texts)).argmax(-1).tolist()
    out = {"accuracy": sum(p == t for p, t in zip(pred, themes, strict=True)) / max(1, len(texts))}
    for i, name in enumerate(THEME_NAMES):
        mine = [p for p, t in zip(pred, themes, strict=True) if t == i]
        if mine:
            out[name] = sum(p == i for p in mine) / len(mine)
    return out
