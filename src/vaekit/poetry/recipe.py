"""The default recipe of `vaekit poem train`, by decoder: what the ablation in docs/benchmarks.md measured best.

The command line fills the settings a user did not give from here; the library does the same through
`recipe_settings`. Each form's epochs train on 2 CPU cores in under 30 minutes (docs/benchmarks.md).
"""

from __future__ import annotations

from typing import Any

__all__ = ["RECIPE", "RECALL", "COMMON", "FORM_RECIPE", "POEM_EPOCHS", "PARALLEL_EPOCHS", "recipe_settings",
           "recipe_default"]

POEM_EPOCHS = {"couplet": 5, "quatrain": 12, "regulated": 8, "quatrain7": 12, "regulated7": 6, "ci": 12}
PARALLEL_EPOCHS = {"couplet": 12, "quatrain": 40, "regulated": 40, "quatrain7": 40, "regulated7": 40,
                   "ci": 40}  # Su's model
RECIPE = {"causal": {"embedding_dim": 128, "decoder_layers": 5, "posterior_bn": 0.9, "kl_warmup": 1.0, "lr": 3e-3,
                     "dropout": 0.2, "encoder_pooling": "flatten"},
          "gru": {"embedding_dim": 128, "decoder_layers": 1, "posterior_bn": 0.9, "kl_warmup": 1.0, "lr": 3e-3,
                  "dropout": 0.2, "encoder_pooling": "flatten"},
          "parallel": {"embedding_dim": 64, "decoder_layers": 1, "posterior_bn": 0.0, "kl_warmup": 0.0, "lr": 1e-3,
                       "dropout": 0.0, "encoder_pooling": "mean"}}

# what the recipe sets whatever the decoder, where it differs from the settings' own defaults (vaekit.config)
COMMON = {"decoder": "causal", "long_stanzas": True, "latent_dim": 64, "batch_size": 64, "conditioning": "both",
          "grad_clip": 5.0}


# what a form sets beside them: the ci CVAE takes its tune into encoder and decoder only (with the tune in the
# prior's mean too its held-out KL ran away: docs/history.md, 2026-12-07), in smaller batches (8,500 ci to learn from)
FORM_RECIPE = {"ci": {"conditioning": "input", "batch_size": 32}}


# the model that tells poems back (shipped as FORM-recall; `vaekit poem train --recall`): every character from z alone,
# so z must carry the poem, with BN-VAE's floor high enough that it does (docs/history.md, 2026-12-07: the first
# measurement and the choice of the floor)
RECALL = {"decoder": "parallel", "embedding_dim": 128, "encoder_layers": 3, "decoder_layers": 3, "latent_dim": 128,
          "posterior_bn": 1.2, "encoder_pooling": "flatten", "kl_warmup": 0.0, "lr": 1e-3, "dropout": 0.0,
          "epochs": 10}


def recipe_settings(decoder: str | None, form: str, given: dict[str, Any], recall: bool = False) -> dict[str, Any]:
    """The recipe's settings for a decoder (the recipe's own when None) and form, or with `recall` those of the
    model that tells poems back; every setting given (not None) wins over them."""
    if recall:
        settings = {**COMMON, **FORM_RECIPE.get(form, {}), **RECALL}
    else:
        decoder = decoder or COMMON["decoder"]
        settings = {**COMMON, **FORM_RECIPE.get(form, {}), "decoder": decoder, **RECIPE[decoder],
                    "epochs": (PARALLEL_EPOCHS if decoder == "parallel" else POEM_EPOCHS)[form]}
    return {**settings, **{k: v for k, v in given.items() if v is not None}}


def recipe_default(name: str) -> str | None:
    """How the recipe sets `name`, for a flag's help: one value, or one a decoder; None if it leaves it alone."""
    if name in RECIPE["causal"]:
        values = {decoder: RECIPE[decoder][name] for decoder in RECIPE}
        if len(set(map(str, values.values()))) == 1:
            return str(values["causal"])
        return ", ".join(f"{decoder} {value}" for decoder, value in values.items())
    if name in COMMON:
        value = COMMON[name]
        return ("on" if value else "off") if isinstance(value, bool) else str(value)
    return None
