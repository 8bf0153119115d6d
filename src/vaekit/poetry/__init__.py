"""The poem generator: a CNN + VAE that writes five-character classical Chinese poems from a random z.

    import vaekit
    from vaekit.poetry import write, format_poem
    model = vaekit.load("quatrain")              # the model shipped with vaekit (or a run directory)
    for text in write(model, 5, seed=1):
        print(format_poem(text))
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import torch

from vaekit.data.errors import DataError
from vaekit.data.poetry import is_han, poem_chars
from vaekit.poetry.decode import (
    DECODE_BATCH,
    DEFAULT_REPEAT_PENALTY,
    DEFAULT_TEMPERATURE,
    DEFAULT_TOP_P,
    LINES_FILE,
    SAMPLING,
    ConstraintError,
    Sampling,
    VerseRules,
    check_sampling,
    decode,
)
from vaekit.poetry.verse import lines_of_text
from vaekit.seeds import check_seed

__all__ = ["shipped_dir", "shipped_model_dir", "shipped_name", "VARIANTS", "write", "interpolate", "reconstruct",
           "kept_in_place", "format_poem", "encode_poem", "poem_scores", "VerseRules", "ConstraintError", "LINES_FILE",
           "DEFAULT_TEMPERATURE", "DEFAULT_TOP_P", "DEFAULT_REPEAT_PENALTY", "SAMPLING", "Sampling"]


VARIANTS = ("themed", "recall")  # shipped beside a form's model: its themed CVAE, and one that tells poems back


def shipped_dir(name: str) -> Path:
    """Where the model shipped in the package under `name` (FORM, or FORM-VARIANT of `VARIANTS`) lives."""
    return Path(str(resources.files("vaekit.poetry") / "shipped" / name))


def shipped_model_dir(form: str, themed: bool = False, recall: bool = False) -> Path:
    """Where the model trained for `form` and shipped in the package lives: the one that writes, its themed CVAE
    (`themed`), or the one whose latent carries a poem, which tells poems back and walks between them (`recall`)."""
    if themed and recall:
        raise ValueError("a shipped model is themed or recalls poems, not both")
    return shipped_dir(f"{form}-themed" if themed else f"{form}-recall" if recall else form)


def shipped_name(form: str, themed: bool = False, recall: bool = False) -> str:
    """The shipped model a command means for `form`: FORM, FORM-themed, or with `recall` (what `reconstruct` and
    `interpolate` use) FORM-recall where one is shipped, else the form's own model."""
    if themed:
        return f"{form}-themed"
    return f"{form}-recall" if recall and (shipped_model_dir(form, recall=True) / "config.json").is_file() else form


def write(model: torch.nn.Module, n: int = 5, seed: int | None = None, temperature: float = SAMPLING.temperature,
          allow_unknown: bool = False, rules: VerseRules | None = None, top_p: float = SAMPLING.top_p,
          beam: int = SAMPLING.beam, best_of: int = SAMPLING.best_of, theme: str | int | None = None,
          repeat_penalty: float = SAMPLING.repeat_penalty) -> list[str]:
    """n new poems (punctuation-free texts) decoded from z ~ N(0, I).

    With `rules` the constrained decoder keeps tone, rhyme and the other rules (sampling at `temperature`
    with `top_p`, or a beam search of width `beam`), a character the poem already holds `repeat_penalty`
    nats less likely; `best_of` N writes N candidates a poem and keeps the
    one the model scores highest (its ELBO). Without rules each position is decoded freely, as Su's model did.
    A themed model (`vaekit poem train --themed`) writes to `theme` (a name of `poetry.themes.THEMES`).
    """
    check_sampling(n, temperature, top_p, beam if beam > 1 else 0, best_of, repeat_penalty)
    y = _theme_of_model(model, theme)
    generator = torch.Generator().manual_seed(check_seed(seed)) if seed is not None else None
    if rules is None:
        texts = []
        for start in range(0, n * best_of, DECODE_BATCH):  # a batch at a time: memory stays bounded
            count = min(DECODE_BATCH, n * best_of - start)
            ids = model.generate(count, temperature=temperature, generator=generator,
                                 forbid=None if allow_unknown else [0],
                                 **({} if y is None else {"y": torch.full((count,), y)}))
            texts += model.vocab.decode(ids.cpu())
    else:
        texts = decode(model, n * best_of, rules, temperature=temperature, top_p=top_p, beam=beam,
                       generator=generator, lines=getattr(model, "corpus_lines", None), theme=y,
                       repeat_penalty=repeat_penalty)
    if best_of == 1:
        return texts
    scores = poem_scores(model, texts, theme=y)
    best = [max(range(i, i + best_of), key=scores.__getitem__) for i in range(0, len(texts), best_of)]
    return [texts[i] for i in best]


def _theme_of_model(model: torch.nn.Module, theme: str | int | None) -> int | None:
    """The theme index a themed model writes to (the catch-all when none is asked); None for other models."""
    from vaekit.poetry.themes import THEME_NAMES, theme_index

    if not getattr(model, "uses_labels", False):
        if theme is not None:
            raise DataError("this poem model has no themes; train one with `vaekit poem train --themed`, or drop "
                            "--theme")
        return None
    try:
        return theme_index(theme if theme is not None else THEME_NAMES[-1])
    except ValueError as e:
        raise DataError(str(e)) from None


@torch.no_grad()
def poem_scores(model: torch.nn.Module, texts: list[str], theme: int | None = None) -> list[float]:
    """The model's own score of each poem in nats (higher is better): its ELBO with the reconstruction term read
    at the posterior mean, log p(x | z = E_q[z]) - KL(q(z|x) || p(z)).

    A one-sample ELBO moves by several nats from draw to draw, more than candidates differ, so best-of-N picked
    by it followed the random stream; this score depends on the poem (and theme) alone.
    """
    from torch.distributions import kl_divergence

    scores: list[float] = []
    for start in range(0, len(texts), DECODE_BATCH):  # a batch at a time: memory stays bounded
        x = model.vocab.encode(texts[start:start + DECODE_BATCH]).to(next(model.parameters()).device)
        y = None if theme is None else torch.full((len(x),), theme, device=x.device)
        q = model.posterior(x, y)
        scores += (model.likelihood(q.mean, y).log_prob(x) - kl_divergence(q, model.prior(y))).tolist()
    return scores




def encode_poem(model: torch.nn.Module, text: str) -> torch.Tensor:
    """Token ids (1, L) of a poem given with or without punctuation; ValueError if its length is wrong."""
    chars = poem_chars(text)
    foreign = [c for c in chars if not is_han(c)]
    if foreign:
        raise ValueError(f"{text!r} is not a Chinese poem ({foreign[0]!r} is not a Chinese character); "
                         "give the poem's characters, with or without punctuation")
    if len(chars) != model.length:
        raise ValueError(f"the model writes poems of {model.length} characters; {text!r} has {len(chars)}")
    return model.vocab.encode([chars])


@torch.no_grad()
def interpolate(model: torch.nn.Module, a: str, b: str, steps: int = 6, theme: str | int | None = None,
                rules: VerseRules | None = None, seed: int = 0) -> list[str]:
    """Decode points on the straight line between the posterior means of two poems (of one theme, for a
    themed model: the catch-all unless given), each by its most likely characters: the first and last are the two
    poems told back (`reconstruct`).

    With `rules` every point keeps them (the constrained decoder at temperature 0), each under the template its own
    free decoding breaks least and in that decoding's rhyme group (ties drawn with `seed`), so the ends keep their
    poems' shapes; the no-copy rule is off, as the path is made of the given poems' lines. Without, each position
    takes its most likely character freely, as the fit metrics decode.
    """
    y = _theme_of_model(model, theme)
    za, zb = _posterior_mean(model, a, y), _posterior_mean(model, b, y)
    t = torch.linspace(0, 1, steps)[:, None]
    return _decode_codes(model, (1 - t) * za + t * zb, y, rules, seed)


def _posterior_mean(model: torch.nn.Module, text: str, y: int | None) -> torch.Tensor:
    return model.posterior(encode_poem(model, text), **({} if y is None else {"y": torch.tensor([y])})).mean[0]


def _decode_codes(model: torch.nn.Module, z: torch.Tensor, y: int | None, rules: VerseRules | None,
                  seed: int) -> list[str]:
    """Each code's most likely poem: under `rules`, each guided by its free decoding (see `interpolate`); else freely."""
    ids = model.generate(len(z), z=z, forbid=[0], **({} if y is None else {"y": torch.full((len(z),), y)}))
    free = model.vocab.decode(ids.cpu())
    if rules is None:
        return free
    return decode(model, len(z), rules, temperature=0.0, generator=torch.Generator().manual_seed(check_seed(seed)),
                  theme=y, z=z, guides=free)


@torch.no_grad()
def reconstruct(model: torch.nn.Module, text: str, rules: VerseRules | None = None, theme: str | int | None = None,
                seed: int = 0) -> str:
    """The poem told back: decoded at its posterior mean by the most likely characters, keeping `rules` (under the
    template and rhyme its free decoding fits, see `interpolate`) or, without, each position freely. It is the end
    of `interpolate`'s path at that poem."""
    y = _theme_of_model(model, theme)
    return _decode_codes(model, _posterior_mean(model, text, y)[None], y, rules, seed)[0]


def kept_in_place(given: str, told: str) -> float:
    """Share of a poem's characters that its telling-back keeps in place (punctuation ignored)."""
    chars = poem_chars(given)
    if len(chars) != len(told):
        raise ValueError(f"a poem of {len(chars)} characters cannot be compared with one of {len(told)}")
    return sum(a == b for a, b in zip(chars, told, strict=True)) / len(told)


def format_poem(text: str) -> str:
    """One line a row, a comma after odd lines and a full stop after even ones."""
    lines = lines_of_text(text)
    return "\n".join(line + ("，" if i % 2 == 0 else "。") for i, line in enumerate(lines))


