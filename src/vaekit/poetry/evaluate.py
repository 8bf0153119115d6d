"""`vaekit poem evaluate`: every poem metric for one model, constrained and free, beside held-out Tang poems."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from vaekit.poetry import VerseRules, interpolate, kept_in_place, write
from vaekit.poetry.decode import DEFAULT_TEMPERATURE, DEFAULT_TOP_P, LineSet
from vaekit.poetry.metrics import fit, interpolation_overlap, verse_metrics
from vaekit.poetry.task import item_lines, split_items
from vaekit.poetry.verse import check, lines_of_text

__all__ = ["evaluate_poems", "evaluate_ci", "acrostic_share", "theme_scores", "round_trip"]

ROUND_TRIP_PAIRS = 100  # pairs of held-out poems walked with the rules kept: each end's share then reads within ~2 points


def acrostic_share(model: torch.nn.Module, n: int, seed: int, temperature: float) -> float:
    """Share of acrostic heads placed, over n poems headed by random frequent characters of the vocabulary."""
    rng = random.Random(seed)
    n_lines = len(lines_of_text("x" * model.length))
    frequent = model.vocab.chars[1:300]
    placed = total = 0
    for i in range(n):
        heads = "".join(rng.sample(frequent, n_lines))
        rules = VerseRules(form=model.run_config.poem.form, acrostic=heads)
        text = write(model, 1, seed=seed + i, temperature=temperature, rules=rules)[0]
        placed += sum(line[0] == h for line, h in zip(lines_of_text(text), heads, strict=True))
        total += n_lines
    return placed / total


def round_trip(model: torch.nn.Module, poems: list[str], steps: int = 6, seed: int = 0) -> dict[str, Any]:
    """`vaekit poem interpolate A B` with the rules kept, over consecutive pairs of `poems` (the first with the second,
    the third with the fourth, ...): the share of A's and of B's characters in place at each step of the path (its
    ends are A and B told back), the share of the path's poems that keep the rules, and whether, on average over the
    pairs, A's share never rises from a step to the next and falls overall while B's never falls and rises overall
    (a share already at 0 cannot fall further)."""
    pairs = list(zip(poems[::2], poems[1::2], strict=False))
    if not pairs:
        raise ValueError("a round trip needs at least two poems")
    rules = VerseRules(form=model.run_config.poem.form)
    share_a, share_b, kept = [0.0] * steps, [0.0] * steps, 0
    for i, (a, b) in enumerate(pairs):
        path = interpolate(model, a, b, steps=steps, rules=rules, seed=seed + i)
        for k, text in enumerate(path):
            share_a[k] += kept_in_place(a, text) / len(pairs)
            share_b[k] += kept_in_place(b, text) / len(pairs)
        kept += sum(check(text).fits for text in path)
    return {"pairs": len(pairs), "steps": steps, "share_of_a": share_a, "share_of_b": share_b,
            "ends_kept": (share_a[0] + share_b[-1]) / 2, "rules_kept": kept / (len(pairs) * steps),
            "monotone": all(x >= y for x, y in itertools.pairwise(share_a)) and share_a[0] > share_a[-1]
            and all(x <= y for x, y in itertools.pairwise(share_b)) and share_b[0] < share_b[-1]}


def theme_scores(model: torch.nn.Module, n: int, seed: int, temperature: float, top_p: float) -> dict[str, Any]:
    """A themed model writes n poems to each theme (rules kept); the shipped theme classifier reads them."""
    from vaekit.poetry.themes import THEME_NAMES, load_theme_classifier, theme_accuracy

    classifier = load_theme_classifier()
    texts, themes = [], []
    for i, name in enumerate(THEME_NAMES):
        texts += write(model, n, seed=seed + i, temperature=temperature, top_p=top_p,
                       rules=VerseRules(form=model.run_config.poem.form), theme=name)
        themes += [i] * n
    return {"per_theme": n, "written": theme_accuracy(classifier, texts, themes),
            "chance": 1 / len(THEME_NAMES)}


def _split(model: torch.nn.Module, corpus_dir: str | Path | None, say: Callable[[str], None]) -> tuple[Any, list, list]:
    """The model's run settings (pointed at `corpus_dir` when given) and its (training, held-out) items."""
    config = model.run_config
    if corpus_dir is not None:
        config.poem.corpus_dir = str(corpus_dir)
    say("reading the corpus")
    return (config, *split_items(config))


def evaluate_poems(model: torch.nn.Module, corpus_dir: str | Path | None = None, n: int = 1000, seed: int = 0,
                   temperature: float = DEFAULT_TEMPERATURE, top_p: float = DEFAULT_TOP_P, iwae_poems: int = 300,
                   k: int = 100, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Write n poems with the rules kept and n without, and measure both beside n held-out corpus poems; the
    model's fit on n held-out poems (all of them when fewer; with an importance-sampled perplexity on
    `iwae_poems` of those, k samples), the interpolation overlap, and for a themed model the theme classifier's
    reading of poems written to each theme. `progress` is told each stage as it starts.
    """
    say = progress or (lambda _text: None)
    config, train_items, held_items = _split(model, corpus_dir, say)
    train_texts, held_texts = [t for t, _ in train_items], [t for t, _ in held_items]
    lines = getattr(model, "corpus_lines", None) or LineSet.from_lines(
        [line for t in train_texts for line in lines_of_text(t)])
    model.corpus_lines = lines
    rules = VerseRules(form=config.poem.form)
    say(f"writing {n:,} poems with the rules kept and {n:,} without")
    constrained = write(model, n, seed=seed, temperature=temperature, rules=rules, top_p=top_p)
    free = write(model, n, seed=seed, temperature=temperature)
    reference = random.Random(seed).sample(held_texts, min(n, len(held_texts)))
    fitted = held_items if len(held_items) <= n else random.Random(seed).sample(held_items, n)
    held = model.vocab.encode([t for t, _ in fitted])
    device = next(model.parameters()).device
    torch.manual_seed(seed)
    themed = bool(getattr(model, "uses_labels", False))
    labels = torch.tensor([c for _, c in fitted]) if themed else None
    extra: dict[str, Any] = {}
    if themed:
        say("writing to each theme for the theme classifier")
        # 300 a theme at n=1000: one theme's share then reads within about 3 points (its standard error)
        extra["themes"] = theme_scores(model, max(10, 3 * n // 10), seed, temperature, top_p)
    elif len(held) >= 2:
        say("interpolating between held-out poems")
        extra["interpolation"] = interpolation_overlap(model, held, seed=seed)
        say("walking the path between pairs of held-out poems with the rules kept")
        extra["round_trip"] = round_trip(model, [t for t, _ in fitted[:2 * ROUND_TRIP_PAIRS]], seed=seed)
    say("placing acrostic heads")
    acrostics = acrostic_share(model, min(n, 100), seed, temperature)
    say(f"fitting {len(held):,} held-out poems (of {len(held_texts):,})")
    return {
        "form": config.poem.form, "poems": n, "seed": seed, "temperature": temperature, "top_p": top_p,
        "train_poems": len(train_texts), "held_out_poems": len(held_texts), "fit_poems": len(held),
        "vocabulary": len(model.vocab),
        "constrained": verse_metrics(constrained, lines), "unconstrained": verse_metrics(free, lines),
        "corpus": verse_metrics(reference, lines),
        "acrostic_heads_placed": acrostics,
        "fit": fit(model, held, labels, device=device, iwae_poems=iwae_poems, k=k),
        "examples": constrained[:3], **extra,
    }


def evaluate_ci(model: torch.nn.Module, corpus_dir: str | Path | None = None, n: int = 600, seed: int = 0,
                temperature: float = DEFAULT_TEMPERATURE, top_p: float = DEFAULT_TOP_P,
                progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """A ci model: n ci spread over its tunes with the tunes' rules kept and n with their lengths only, measured
    beside n held-out Song ci (`ci.ci_metrics`), and its fit on those held-out ci. The ELBO covers the padding after
    each ci too, which the tune predicts; it is reported per ci and per character of the ci themselves."""
    from vaekit.poetry.ci import ci_metrics, write_ci
    from vaekit.poetry.tunes import tunes

    say = progress or (lambda _text: None)
    _, train_items, held_items = _split(model, corpus_dir, say)
    shipped = tunes()
    lines = getattr(model, "corpus_lines", None) or LineSet.from_lines(item_lines(model.run_config, train_items))
    model.corpus_lines = lines
    per_tune = max(1, n // len(shipped))
    say(f"writing {per_tune} ci to each of {len(shipped)} tunes, with the rules kept and without")
    written, free = [], []
    for k, tune in enumerate(shipped):
        kw = {"seed": seed + k, "temperature": temperature, "top_p": top_p}
        written += [(t, k) for t in write_ci(model, tune, per_tune, **kw)]
        free += [(t, k) for t in write_ci(model, tune, per_tune, rules=False, **kw)]
    held = held_items if len(held_items) <= n else random.Random(seed).sample(held_items, n)
    say(f"fitting {len(held):,} held-out ci")
    torch.manual_seed(seed)
    device = next(model.parameters()).device
    fitted = fit(model, model.vocab.encode([t for t, _ in held]), torch.tensor([k for _, k in held]), device=device)
    chars = sum(shipped[k].chars for _, k in held) / len(held)
    elbo = fitted["elbo_per_char"] * model.length
    return {"form": "ci", "tunes": len(shipped), "per_tune": per_tune, "seed": seed, "temperature": temperature,
            "top_p": top_p, "train_ci": len(train_items), "held_out_ci": len(held_items), "fit_ci": len(held),
            "constrained": ci_metrics(written, lines), "unconstrained": ci_metrics(free, lines),
            "corpus": ci_metrics(held, lines),
            "fit": {"elbo_per_ci": elbo, "elbo_per_char": elbo / chars, "kl_per_ci": fitted["kl_per_poem"],
                    "reconstruction_with_padding": fitted["reconstruction_accuracy"],
                    "active_units": fitted["active_units"], "latent_dim": fitted["latent_dim"]},
            "examples": [shipped[k].format(t) for t, k in written[:3]]}
