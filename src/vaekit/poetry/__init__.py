"""The poem generator: a CNN + VAE that writes five-character classical Chinese poems from a random z.

    from vaekit.poetry import load_poem_model, write, format_poem
    model = load_poem_model("quatrain")          # the model shipped with vaekit (or a run directory)
    for text in write(model, 5, seed=1):
        print(format_poem(text))
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import torch

from vaekit.data.errors import DataError
from vaekit.data.poetry import FORMS, is_han
from vaekit.poetry.decode import LINES_FILE, ConstraintError, LineSet, VerseRules, decode
from vaekit.poetry.verse import lines_of_text

__all__ = ["shipped_model_dir", "load_poem_model", "write", "interpolate", "format_poem", "encode_poem",
           "poem_scores", "VerseRules", "ConstraintError", "LINES_FILE"]


def shipped_model_dir(form: str) -> Path:
    """Where the model trained for `form` and shipped in the package lives."""
    return Path(str(resources.files("vaekit.poetry") / "shipped" / form))


def load_poem_model(form: str | None = None, run: str | Path | None = None, device: str = "cpu") -> torch.nn.Module:
    """A trained poem model: from a run directory, else the one shipped for `form` (default quatrain)."""
    from vaekit.tasks import load

    if run is None:
        form = form or "quatrain"
        if form not in FORMS:
            raise DataError(f"form must be one of {', '.join(FORMS)}; got {form!r}")
        run = shipped_model_dir(form)
        if not (run / "config.json").is_file():
            raise DataError(f"vaekit ships no {form} model; train one with `vaekit poem train --form {form}` "
                            "and pass --run DIR")
    model = load(run, device=device)
    if not hasattr(model, "vocab"):
        raise DataError(f"{run}: not a poem run (it was trained with `vaekit train`); pass a `vaekit poem train` run")
    model.corpus_lines = LineSet.load(Path(run) / LINES_FILE)  # training lines a poem must not copy
    return model


def write(model: torch.nn.Module, n: int = 5, seed: int | None = None, temperature: float = 0.0,
          allow_unknown: bool = False, rules: VerseRules | None = None, top_p: float = 1.0, beam: int = 0,
          best_of: int = 1) -> list[str]:
    """n new poems (punctuation-free texts) decoded from z ~ N(0, I).

    With `rules` the constrained decoder keeps tone, rhyme and the other rules (sampling at `temperature`
    with `top_p`, or a beam search of width `beam`); `best_of` N writes N candidates a poem and keeps the
    one the model scores highest (its ELBO). Without rules each position is decoded freely, as Su's model did.
    """
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    if rules is None:
        ids = model.generate(n * best_of, temperature=temperature, generator=generator,
                             forbid=None if allow_unknown else [0])
        texts = model.vocab.decode(ids.cpu())
    else:
        texts = decode(model, n * best_of, rules, temperature=temperature, top_p=top_p, beam=beam,
                       generator=generator, lines=getattr(model, "corpus_lines", None))
    if best_of == 1:
        return texts
    scores = poem_scores(model, texts)
    best = [max(range(i, i + best_of), key=scores.__getitem__) for i in range(0, len(texts), best_of)]
    return [texts[i] for i in best]


@torch.no_grad()
def poem_scores(model: torch.nn.Module, texts: list[str]) -> list[float]:
    """The model's own score of each poem: its ELBO in nats (higher is better)."""
    from vaekit.objectives import elbo

    x = model.vocab.encode(texts).to(next(model.parameters()).device)
    return elbo(model, x).elbo.tolist()


def encode_poem(model: torch.nn.Module, text: str) -> torch.Tensor:
    """Token ids (1, L) of a poem given with or without punctuation; ValueError if its length is wrong."""
    chars = "".join(c for c in text if c.strip() and c not in "，。！？；、,.!?;:：")
    foreign = [c for c in chars if not is_han(c)]
    if foreign:
        raise ValueError(f"{text!r} is not a Chinese poem ({foreign[0]!r} is not a Chinese character); "
                         "give the poem's characters, with or without punctuation")
    if len(chars) != model.length:
        raise ValueError(f"the model writes poems of {model.length} characters; {text!r} has {len(chars)}")
    return model.vocab.encode([chars])


@torch.no_grad()
def interpolate(model: torch.nn.Module, a: str, b: str, steps: int = 6) -> list[str]:
    """Decode points on the straight line between the posterior means of two poems."""
    za = model.posterior(encode_poem(model, a)).mean[0]
    zb = model.posterior(encode_poem(model, b)).mean[0]
    t = torch.linspace(0, 1, steps)[:, None]
    ids = model.generate(steps, z=(1 - t) * za + t * zb, forbid=[0])
    return model.vocab.decode(ids.cpu())


def format_poem(text: str) -> str:
    """One line a row, a comma after odd lines and a full stop after even ones."""
    lines = lines_of_text(text)
    return "\n".join(line + ("，" if i % 2 == 0 else "。") for i, line in enumerate(lines))


