"""How good are generated poems: form, novelty, diversity, fit, rhyme and tone, each beside the corpus."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

from vaekit.data.poetry import UNK
from vaekit.evaluate import elbo_metrics
from vaekit.poetry.verse import line_fits, lines_of_text, rhymes

__all__ = ["distinct_n", "novelty", "rhyme_share", "tone_share", "fit", "form_share"]


def form_share(texts: list[str], length: int) -> dict[str, float]:
    """Share with the right number of characters, and share with no unknown character."""
    return {"right_shape": sum(len(t) == length for t in texts) / len(texts),
            "no_unknown": sum(UNK not in t for t in texts) / len(texts)}


def distinct_n(texts: Iterable[str], n: int) -> float:
    """Distinct n-grams over all n-grams (within lines), the usual diversity measure."""
    grams = [line[i:i + n] for t in texts for line in lines_of_text(t) for i in range(len(line) - n + 1)]
    return len(set(grams)) / max(1, len(grams))


def novelty(texts: list[str], corpus_texts: set[str], corpus_lines: set[str]) -> dict[str, float]:
    """Share of generated lines, and of whole poems, that do not occur in the training corpus."""
    lines = [line for t in texts for line in lines_of_text(t)]
    return {"novel_lines": sum(line not in corpus_lines for line in lines) / max(1, len(lines)),
            "novel_poems": sum(t not in corpus_texts for t in texts) / len(texts)}


def rhyme_share(texts: list[str]) -> float | None:
    """Share of poems whose even lines (2nd and 4th, and 6th and 8th in regulated verse) end in a rhyme."""
    scored = []
    for t in texts:
        lines = lines_of_text(t)
        if len(lines) < 4:
            return None
        ends = [line[-1] for line in lines[1::2]]
        scored.append(all(rhymes(ends[0], e) for e in ends[1:]))
    return sum(scored) / len(scored)


def tone_share(texts: list[str], table: dict[str, str]) -> float:
    """Share of lines (with every checked tone known) that fit an allowed level/oblique pattern."""
    verdicts = [line_fits(line, table) for t in texts for line in lines_of_text(t)]
    known = [v for v in verdicts if v is not None]
    return sum(known) / max(1, len(known))


@torch.no_grad()
def fit(model: torch.nn.Module, held_out: torch.Tensor, device: torch.device | str = "cpu") -> dict[str, float]:
    """Held-out reconstruction accuracy per character (argmax at the posterior mean) and ELBO per character."""
    x = held_out.to(device)
    recon = torch.cat([model.logits(model.posterior(x[i:i + 500]).mean).argmax(-1)
                       for i in range(0, len(x), 500)])
    metrics = elbo_metrics(model, held_out, torch.zeros(len(held_out), dtype=torch.long), device=device)
    length = held_out.shape[1]
    return {"reconstruction_accuracy": float((recon == x).float().mean()),
            "elbo_per_char": metrics["elbo"] / length, "kl_per_poem": metrics["kl"],
            "perplexity_bound": math.exp(-metrics["elbo"] / length)}
