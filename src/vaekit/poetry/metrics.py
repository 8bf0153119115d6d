"""How good are poems: the rules of verse (Pingshui rhyme, template fit, tones), repetition, copying, diversity, fit.

Every function takes punctuation-free texts, so generated poems and held-out Tang poems are measured alike.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

from vaekit.data.poetry import UNK
from vaekit.evaluate import elbo_metrics
from vaekit.poetry.decode import LineSet
from vaekit.poetry.verse import alternates, check, has_doubled_character, lines_of_text, rhyme_groups

__all__ = ["distinct_n", "novelty", "rhyme_share", "template_fit_share", "alternation_share", "doubled_share",
           "verse_metrics", "fit", "form_share"]


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


def _rhymes(text: str) -> bool | None:
    """Lines 2 and 4 (6, 8) end in characters sharing one of the 106 Pingshui groups, and line 1 too when the
    template it fits best asks for it; None for a couplet (nothing to rhyme with)."""
    lines = lines_of_text(text)
    if len(lines) < 4:
        return None
    ends = [line[-1] for line in lines[1::2]]
    if 0 in check(text).template.rhyme_lines:
        ends.append(lines[0][-1])
    listed = [rhyme_groups(c) for c in ends if rhyme_groups(c)]  # as in the checker: unlisted variants are neutral
    return len(listed) >= 2 and bool(frozenset.intersection(*listed))


def rhyme_share(texts: list[str]) -> float | None:
    """Share of poems whose rhyming lines rhyme under the Pingshui rhyme book (None for couplets)."""
    verdicts = [_rhymes(t) for t in texts]
    return None if verdicts and verdicts[0] is None else sum(map(bool, verdicts)) / max(1, len(verdicts))


def template_fit_share(texts: list[str]) -> float:
    """Share of poems that keep every rule of one template (tones, 孤平, 三平尾, rhyme)."""
    return sum(check(t).fits for t in texts) / max(1, len(texts))


def alternation_share(texts: list[str]) -> float:
    """Share of lines whose 2nd and 4th characters take opposite tones (lines with an unlisted one left out)."""
    verdicts = [alternates(line[1], line[3]) for t in texts for line in lines_of_text(t)]
    known = [v for v in verdicts if v is not None]
    return sum(known) / max(1, len(known))


def doubled_share(texts: list[str]) -> float:
    """Share of poems with a character twice in a row within a line."""
    return sum(has_doubled_character(t) for t in texts) / max(1, len(texts))


def verse_metrics(texts: list[str], corpus_lines: LineSet | None) -> dict[str, float | None]:
    """Every rule-and-diversity figure of a set of poems, as reported beside the corpus's own."""
    lines = [line for t in texts for line in lines_of_text(t)]
    copied = None if corpus_lines is None else sum(line in corpus_lines for line in lines) / max(1, len(lines))
    return {"rhyme": rhyme_share(texts), "template_fit": template_fit_share(texts),
            "alternating_2_4": alternation_share(texts), "doubled_character": doubled_share(texts),
            "copied_lines": copied, "distinct_1": distinct_n(texts, 1), "distinct_2": distinct_n(texts, 2),
            "no_unknown": sum(UNK not in t for t in texts) / max(1, len(texts))}


@torch.no_grad()
def fit(model: torch.nn.Module, held_out: torch.Tensor, device: torch.device | str = "cpu") -> dict[str, float]:
    """Held-out reconstruction accuracy per character (greedy decoding at the posterior mean), ELBO per character."""
    x = held_out.to(device)
    recon = torch.cat([model.greedy(model.posterior(x[i:i + 500]).mean) for i in range(0, len(x), 500)])
    metrics = elbo_metrics(model, held_out, torch.zeros(len(held_out), dtype=torch.long), device=device)
    length = held_out.shape[1]
    return {"reconstruction_accuracy": float((recon == x).float().mean()),
            "elbo_per_char": metrics["elbo"] / length, "kl_per_poem": metrics["kl"],
            "perplexity_bound": math.exp(-metrics["elbo"] / length)}
