"""`vaekit poem evaluate`: every poem metric for one model, each beside the same measure on the corpus."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import torch

from vaekit.data.poetry import load_poems, load_strains
from vaekit.poetry import write
from vaekit.poetry.metrics import distinct_n, fit, form_share, novelty, rhyme_share, tone_share
from vaekit.poetry.task import corpus_texts, split_texts
from vaekit.poetry.verse import build_tone_table, lines_of_text

__all__ = ["evaluate_poems"]


def evaluate_poems(model: torch.nn.Module, corpus_dir: str | Path | None = None, n: int = 1000, seed: int = 0,
                   temperature: float = 0.0) -> dict[str, Any]:
    """Generate n poems and score them; the corpus split is the one the model was trained with."""
    config = model.run_config
    if corpus_dir is not None:
        config.corpus_dir = str(corpus_dir)
    train_texts, held_texts = split_texts(corpus_texts(config), config.seed)
    generated = write(model, n, seed=seed, temperature=temperature)
    generated_any = write(model, n, seed=seed, temperature=temperature, allow_unknown=True)
    reference = random.Random(seed).sample(train_texts, min(n, len(train_texts)))
    corpus_lines = {line for t in train_texts for line in lines_of_text(t)}
    poems = load_poems(config.corpus_dir)
    table = build_tone_table(poems, load_strains(config.corpus_dir))
    held = model.vocab.encode(held_texts)
    out: dict[str, Any] = {
        "form": config.form, "poems": n, "seed": seed, "temperature": temperature,
        "train_poems": len(train_texts), "held_out_poems": len(held_texts), "vocabulary": len(model.vocab),
        "shape": form_share(generated, model.length),
        "shape_without_unknown_ban": form_share(generated_any, model.length),
        "novelty": novelty(generated, set(train_texts), corpus_lines),
        "distinct_1": distinct_n(generated, 1), "distinct_2": distinct_n(generated, 2),
        "corpus_distinct_1": distinct_n(reference, 1), "corpus_distinct_2": distinct_n(reference, 2),
        "fit": fit(model, held, device=next(model.parameters()).device),
        "tone_fit": tone_share(generated, table), "corpus_tone_fit": tone_share(reference, table),
        "tone_table_chars": len(table),
    }
    rhyme = rhyme_share(generated)
    if rhyme is not None:
        out["rhyme"] = rhyme
        out["corpus_rhyme"] = rhyme_share(reference)
    return out
