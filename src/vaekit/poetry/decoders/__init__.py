"""The poem decoders, one module a kind, behind one registry: `vaekit poem train --decoder NAME` takes a name of
`DECODERS`, and `PoemVAE` asks the kind, never the name, how to build and run it."""

from __future__ import annotations

from vaekit.poetry.decoders.base import Autoregressive, CausalLikelihood, DecoderKind
from vaekit.poetry.decoders.causal import Causal, CausalGatedConv, CausalStepper
from vaekit.poetry.decoders.gru import GRU
from vaekit.poetry.decoders.parallel import Parallel

__all__ = ["REGISTRY", "decoder_kind", "DecoderKind", "Autoregressive", "CausalLikelihood", "CausalGatedConv",
           "CausalStepper"]

REGISTRY: dict[str, type[DecoderKind]] = {kind.name: kind for kind in (Parallel, Causal, GRU)}


def decoder_kind(name: str) -> DecoderKind:
    """The decoder kind registered under `name`; ValueError naming the choices otherwise."""
    if name not in REGISTRY:
        raise ValueError(f"decoder must be one of {', '.join(REGISTRY)}; got {name!r}")
    return REGISTRY[name]()
