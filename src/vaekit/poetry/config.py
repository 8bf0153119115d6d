"""The poem model's settings, each declared once: its default, its choices or bounds, and the help of the
`vaekit poem train` flag generated from it. A new setting is one field here, read by the model where it acts."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any

from vaekit.poetry.decoders import REGISTRY

__all__ = ["PoemConfig", "DECODERS", "POOLINGS", "PRIORS", "poem_flags", "setting", "ANY_AMOUNT", "A_SHARE"]

DECODERS = tuple(REGISTRY)  # the decoder kinds, one module each (vaekit.poetry.decoders)
POOLINGS = ("mean", "flatten")
PRIORS = ("standard", "fitted")


def setting(default: Any, help: str, flag: str | None = None, choices: tuple[str, ...] | None = None,
            group: str = "poem", cli: bool = True, bounds: tuple[float, float] | None = None) -> Any:
    """A field with what the command line needs to offer it: its help, its flag (default: --the-name), its
    choices, the help group it is listed under, and the [low, high) its number must fall in (vaekit.config checks
    it); `cli` False for settings that only the library or a refit sets."""
    metadata = {"help": help, "flag": flag, "choices": choices, "group": group, "cli": cli, "bounds": bounds}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=metadata)
    return field(default=default, metadata=metadata)


ANY_AMOUNT = (0.0, math.inf)  # a number >= 0
A_SHARE = (0.0, 1.0)  # a share: from 0 up to (not including) 1
COLLAPSE = "against posterior collapse (training only: the reported ELBO stays the true bound)"


@dataclass
class PoemConfig:
    """The poem task: corpus, form and vocabulary, the poem model's sizes and its remedies against collapse."""

    form: str = setting("quatrain", "what the model writes")
    corpus_dir: str | None = setting(None, "folder or clone of the corpus (default: where `vaekit poem fetch` put it)",
                                     flag="--corpus")
    min_count: int = setting(2, "rarer characters become □")
    regulated_halves: bool = setting(True, "quatrain form: also train on both 4-line halves of each regulated poem")
    long_stanzas: bool = setting(False, "quatrain forms: also train on the 4-line stanzas of pailü and ancient-style "
                                        "poems (never held out)")
    song: bool = setting(False, "also train on the Song dynasty's poems of the form and their stanzas (the held-out "
                                "poems stay Tang); needs a corpus fetched by this version")
    simplified: bool = setting(False, "convert the corpus to simplified characters (OpenCC)")
    embedding_dim: int = setting(64, "character embedding width (and conv channels)")
    encoder_layers: int = setting(2, "gated convolutions in the encoder")
    encoder_dilations: list[int] | None = setting(None, "one dilation an encoder layer (unset: all 1)", cli=False)
    encoder_pooling: str = setting("mean", "mean: average the encoder's positions (which phrases; Su's); flatten: "
                                           "every position in order (which phrase where)", choices=POOLINGS)
    decoder_layers: int = setting(1, "gated convolutions (or GRU layers) in the decoder")
    decoder: str = setting("parallel", "parallel: every character from z (Su's); causal: each from z and the "
                                       "characters before it, by dilated causal convolutions; gru: the same by a GRU",
                           choices=DECODERS)
    free_bits: float = setting(0.0, "KL floor per latent dimension (nats)", group=COLLAPSE, bounds=ANY_AMOUNT)
    posterior_bn: float = setting(0.0, "BN-VAE: batch-norm the posterior mean with this fixed scale gamma (0: off)",
                                  group=COLLAPSE, bounds=ANY_AMOUNT)
    bag_weight: float = setting(0.0, "weight of a loss asking z which characters the poem holds (0: off)",
                                group=COLLAPSE, bounds=ANY_AMOUNT)
    ae_pretrain: float = setting(0.0, "epochs trained as an autoencoder before the KL is turned on and the decoder "
                                      "reset", group=COLLAPSE, bounds=ANY_AMOUNT)
    dropout: float = setting(0.0, "dropout on the autoregressive decoder's input and layers in training",
                             bounds=A_SHARE)
    word_dropout: float = setting(0.0, "share of the characters the decoder reads hidden as □ in training, so it must "
                                       "take them from z (Bowman et al. 2016; 0: off)", group=COLLAPSE, bounds=A_SHARE)
    prior: str = setting("standard", "standard: N(0, I); fitted: a full-covariance Gaussian matched to the "
                                     "posteriors after training (a refit sets it)", choices=PRIORS, cli=False)
    train_size: int | None = setting(None, "train on the first N poems only (quick runs)", cli=False)
    eval_size: int | None = setting(None, "score the first N held-out poems only", cli=False)


def poem_flags() -> list[tuple[str, str, Any]]:
    """(flag, field name, the field) for every PoemConfig setting the command line offers."""
    out = []
    for f in fields(PoemConfig):
        if f.metadata.get("cli", False):
            out.append((f.metadata["flag"] or "--" + f.name.replace("_", "-"), f.name, f))
    return out
