"""Su Jianlin's decoder: every position at once from z (non-autoregressive), so z ~ p(z) and one pass is a poem."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from vaekit.distributions import categorical_likelihood
from vaekit.poetry.decoders.base import DecoderKind, Model
from vaekit.poetry.layers import GatedConv
from vaekit.poetry.sampling import categorical

__all__ = ["Parallel"]


class Parallel(DecoderKind):
    """Dense from the code to L x d, residual gated convolutions, a softmax over the vocabulary at each position."""

    name = "parallel"
    autoregressive = False
    layer_names = ("from_z", "decoder", "to_logits")

    def embedding(self, vocab_size: int, d: int) -> nn.Embedding:
        return nn.Embedding(vocab_size, d)  # Su's layout, kept as it was so the shipped parallel models still load

    def build(self, model: Model, code_dim: int, d: int, layers: int, dropout: float) -> None:
        model.from_z = nn.Linear(code_dim, model.length * d)
        model.decoder = nn.Sequential(*[GatedConv(d) for _ in range(layers)])
        model.to_logits = nn.Linear(d, model.vocab_size)

    def logits(self, model: Model, z: Tensor, y: Tensor | None) -> Tensor:
        """(..., L, V) logits for codes z of shape (..., latent), all positions at once."""
        lead = z.shape[:-1]
        code = model._code(z, y)
        h = model.from_z(code.reshape(-1, code.shape[-1])).view(-1, model.embed.embedding_dim, model.length)
        out = model.to_logits(model.decoder(h).transpose(1, 2))
        return out.reshape(*lead, model.length, model.vocab_size).float()

    def likelihood(self, model: Model, z: Tensor, y: Tensor | None) -> torch.distributions.Distribution:
        return categorical_likelihood(self.logits(model, z, y))

    def step_decoder(self, model: Model, z: Tensor, y: Tensor | None) -> Callable[[Tensor], Tensor]:
        logits = self.logits(model, z, y)
        return lambda prefix: logits[:, prefix.shape[1]]

    def greedy(self, model: Model, z: Tensor, y: Tensor | None) -> Tensor:
        return self.logits(model, z, y).argmax(-1)

    def generate(self, model: Model, z: Tensor, temperature: float, generator: torch.Generator | None,
                 forbid: list[int] | None, y: Tensor | None) -> Tensor:
        logits = self.logits(model, z, y)
        if forbid:
            logits[..., forbid] = float("-inf")
        if temperature <= 0:
            return logits.argmax(-1)
        probs = torch.softmax(logits / temperature, dim=-1)
        flat = categorical(probs.reshape(-1, model.vocab_size).cpu(), generator)
        return flat.view(len(z), model.length).to(z.device)
