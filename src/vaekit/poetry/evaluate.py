"""`vaekit poem evaluate`: every poem metric for one model, constrained and free, beside held-out Tang poems."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import torch

from vaekit.poetry import VerseRules, write
from vaekit.poetry.decode import LineSet
from vaekit.poetry.metrics import fit, verse_metrics
from vaekit.poetry.task import corpus_texts, split_texts
from vaekit.poetry.verse import lines_of_text

__all__ = ["evaluate_poems", "acrostic_share"]


def acrostic_share(model: torch.nn.Module, n: int, seed: int, temperature: float) -> float:
    """Share of acrostic heads placed, over n poems headed by random frequent characters of the vocabulary."""
    rng = random.Random(seed)
    n_lines = len(lines_of_text("x" * model.length))
    frequent = model.vocab.chars[1:300]
    placed = total = 0
    for i in range(n):
        heads = "".join(rng.sample(frequent, n_lines))
        rules = VerseRules(form=model.run_config.form, acrostic=heads)
        text = write(model, 1, seed=seed + i, temperature=temperature, rules=rules)[0]
        placed += sum(line[0] == h for line, h in zip(lines_of_text(text), heads, strict=True))
        total += n_lines
    return placed / total


def evaluate_poems(model: torch.nn.Module, corpus_dir: str | Path | None = None, n: int = 1000, seed: int = 0,
                   temperature: float = 0.7, top_p: float = 0.9) -> dict[str, Any]:
    """Write n poems with the rules kept and n without, and measure both beside n held-out corpus poems."""
    config = model.run_config
    if corpus_dir is not None:
        config.corpus_dir = str(corpus_dir)
    train_texts, held_texts = split_texts(corpus_texts(config), config.seed)
    lines = getattr(model, "corpus_lines", None) or LineSet.from_lines(
        [line for t in train_texts for line in lines_of_text(t)])
    model.corpus_lines = lines
    rules = VerseRules(form=config.form)
    constrained = write(model, n, seed=seed, temperature=temperature, rules=rules, top_p=top_p)
    free = write(model, n, seed=seed, temperature=temperature)
    reference = random.Random(seed).sample(held_texts, min(n, len(held_texts)))
    return {
        "form": config.form, "poems": n, "seed": seed, "temperature": temperature, "top_p": top_p,
        "train_poems": len(train_texts), "held_out_poems": len(held_texts), "vocabulary": len(model.vocab),
        "constrained": verse_metrics(constrained, lines), "unconstrained": verse_metrics(free, lines),
        "corpus": verse_metrics(reference, lines),
        "acrostic_heads_placed": acrostic_share(model, min(n, 100), seed, temperature),
        "fit": fit(model, model.vocab.encode(held_texts), device=next(model.parameters()).device),
        "examples": constrained[:3],
    }
