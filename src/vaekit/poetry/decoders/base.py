"""What a poem decoder kind is: how it builds its layers on the model, and how it turns z into characters.

A kind is a small strategy object, not a module: it creates its layers as attributes of the `PoemVAE` (so the
weights keep the names the shipped models were saved under) and the model asks it, not a branch on a name, how
to score, step, write and reset. `Autoregressive` holds what every decoder that reads the characters before shares:
the start token, word dropout, teacher forcing, the tied output layer, and writing one position at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vaekit import kernels
from vaekit.poetry.output import linear_log_prob
from vaekit.poetry.sampling import categorical

__all__ = ["DecoderKind", "Autoregressive", "CausalLikelihood", "UNK_ID"]

UNK_ID = 0  # the vocabulary's first entry is always UNK (□)
Model = Any  # vaekit.poetry.model.PoemVAE, which imports this module


class DecoderKind:
    """The interface: the embedding table it needs, its layers, and z -> characters."""

    name = ""
    autoregressive = True
    layer_names: tuple[str, ...] = ()  # the model's attributes that are this decoder's own (reset_decoder)

    def embedding(self, vocab_size: int, d: int) -> nn.Embedding:
        raise NotImplementedError

    def build(self, model: Model, code_dim: int, d: int, layers: int, dropout: float) -> None:
        raise NotImplementedError

    def likelihood(self, model: Model, z: Tensor, y: Tensor | None) -> Any:
        raise NotImplementedError

    def step_decoder(self, model: Model, z: Tensor, y: Tensor | None) -> Callable[[Tensor], Tensor]:
        raise NotImplementedError

    def generate(self, model: Model, z: Tensor, temperature: float, generator: torch.Generator | None,
                 forbid: list[int] | None, y: Tensor | None) -> Tensor:
        raise NotImplementedError

    def greedy(self, model: Model, z: Tensor, y: Tensor | None) -> Tensor:
        raise NotImplementedError


class CausalLikelihood:
    """p(x | z) = prod_t p(x_t | x_<t, z) of an autoregressive decoder; `log_prob` runs it with teacher forcing.

    z may carry leading sample dimensions (k, B, latent), as the objectives pass it; x is (B, L).
    """

    def __init__(self, model: Model, z: Tensor, y: Tensor | None = None):
        self.model, self.z, self.y = model, z, y

    def log_prob(self, x: Tensor) -> Tensor:
        lead = self.z.shape[:-1]
        z = self.z.reshape(-1, self.model.latent_dim)
        y = None if self.y is None else self.y.expand(*lead).reshape(-1)
        tokens = x.expand(*lead, x.shape[-1]).reshape(-1, x.shape[-1])
        states = self.model._causal_states(z, tokens[:, :-1], y)
        logp = self.model._output_log_prob(states.reshape(-1, states.shape[-1]), tokens.reshape(-1))
        return logp.view(tokens.shape).sum(-1).reshape(lead)


class Autoregressive(DecoderKind):
    """Character t from z and the characters before it; the output layer shares the embedding's table (tied)."""

    def embedding(self, vocab_size: int, d: int) -> nn.Embedding:
        """One table for encoder input, decoder input and output (tied, Press & Wolf 2017); row V is the start."""
        embed = nn.Embedding(vocab_size + 1, d)
        # unit-variance rows would make the tied output's first logits ~sqrt(d) wide and slow learning
        # (held-out perplexity 880 against 510 after 1,000 steps)
        nn.init.normal_(embed.weight, std=d**-0.5)
        return embed

    def build_output(self, model: Model, d: int) -> None:
        model.out_proj = nn.Linear(d, d)
        model.out_bias = nn.Parameter(torch.zeros(model.vocab_size))

    def run(self, model: Model, h: Tensor, code: Tensor, inputs: list[Tensor] | None) -> Tensor:
        """(N, T+1, d) decoder states from the embedded input h (N, T+1, d) and the code."""
        raise NotImplementedError

    def states(self, model: Model, z: Tensor, before: Tensor, y: Tensor | None,
               inputs: list[Tensor] | None = None) -> Tensor:
        """(N, T+1, d) states of positions 0..T given z and the T characters before them; in training a share of
        those characters is hidden as the corpus's own mark for a lost one (word dropout)."""
        code = model._code(z, y)
        if model.training and model.word_dropout > 0:
            hide = torch.rand(before.shape, device=before.device) < model.word_dropout
            before = before.masked_fill(hide, UNK_ID)
        start = torch.full((len(before), 1), model.vocab_size, dtype=torch.long, device=before.device)
        h = model.drop(model.embed(torch.cat([start, before], dim=1)))
        return self.run(model, h, code, inputs)

    def output(self, model: Model, h: Tensor) -> Tensor:
        """Logits over the vocabulary from decoder states (..., d), through the tied embedding."""
        u, table = torch.tanh(model.out_proj(h)), model.embed.weight[: model.vocab_size]
        if kernels.usable(u, table):  # decoding on a CPU: oneDNN, faster than the BLAS at these shapes (vaekit.kernels)
            return kernels.linear(u, table, model.out_bias)
        if u.ndim == 2:  # one position of a batch, as in decoding: (V, d) @ (d, B) ran faster than (B, d) @ (d, V)
            return torch.addmm(model.out_bias[:, None], table, u.t()).t().float().contiguous()
        return F.linear(u, table, model.out_bias).float()

    def output_log_prob(self, model: Model, h: Tensor, target: Tensor) -> Tensor:
        """log p(target) from decoder states h (N, d): `output`'s softmax at the targets, fused (poetry.output)."""
        return linear_log_prob(torch.tanh(model.out_proj(h)), model.embed.weight[: model.vocab_size], model.out_bias,
                               target)

    def likelihood(self, model: Model, z: Tensor, y: Tensor | None) -> CausalLikelihood:
        return CausalLikelihood(model, z, y)

    def step_decoder(self, model: Model, z: Tensor, y: Tensor | None) -> Callable[[Tensor], Tensor]:
        # the stack runs over the prefix (cheap: 20-56 positions), the vocabulary projection only at the last one
        return lambda prefix: self.output(model, self.states(model, z, prefix, y)[:, -1])

    def greedy(self, model: Model, z: Tensor, y: Tensor | None) -> Tensor:
        step = model.step_decoder(z, y)
        ids = torch.zeros(len(z), 0, dtype=torch.long, device=z.device)
        for _ in range(model.length):
            ids = torch.cat([ids, step(ids).argmax(-1, keepdim=True)], dim=1)
        return ids

    def generate(self, model: Model, z: Tensor, temperature: float, generator: torch.Generator | None,
                 forbid: list[int] | None, y: Tensor | None) -> Tensor:
        """Ancestral sampling, one position at a time."""
        step = model.step_decoder(z, y)
        ids = torch.zeros(len(z), 0, dtype=torch.long, device=z.device)
        for _ in range(model.length):
            logits = step(ids)
            if forbid:
                logits[:, forbid] = float("-inf")
            if temperature <= 0:
                nxt = logits.argmax(-1, keepdim=True)
            else:
                probs = torch.softmax(logits / temperature, dim=-1).cpu()
                nxt = categorical(probs, generator)[:, None].to(z.device)
            ids = torch.cat([ids, nxt], dim=1)
        return ids
