"""Su Jianlin's CNN + VAE poem model, over vaekit's posterior / prior / likelihood interface.

A five-character poem has a fixed length, so encoder and decoder can be pure 1-D CNNs. Two decoders:

- `parallel` (Su's): every position at once from z (non-autoregressive): z ~ N(0, I), one forward pass, a poem;
- `causal`: character t from z and the characters before it, through left-padded dilated gated
  convolutions with z entering every layer (after Yang et al. 2017), so line 4 can agree with line 2.

Both offer the same `step_decoder(z)` to the constrained decoder, which never knows which it drives.
Encoder: embedding, two residual gated convolutions (kernel 3, h[:d] * sigmoid(h[d:])), global average
pooling, dense layers for mean and log-variance. Decoder: dense to L x d, residual gated convolution(s),
a softmax over the vocabulary at each position.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.distributions import Distribution

from vaekit.distributions import categorical_likelihood, diagonal_gaussian, standard_normal
from vaekit.objectives import ELBOTerms, elbo

__all__ = ["GatedConv", "CausalGatedConv", "CausalLikelihood", "PoemVAE", "DECODERS"]

DECODERS = ("parallel", "causal")


class GatedConv(nn.Module):
    """x + a * sigmoid(b), [a, b] = conv1d(x): the residual gated convolution of Su's model (kernel 3)."""

    def __init__(self, channels: int, kernel: int = 3):
        super().__init__()
        self.conv = nn.Conv1d(channels, 2 * channels, kernel, padding=kernel // 2)

    def forward(self, x: Tensor) -> Tensor:  # x: (B, d, L)
        a, b = self.conv(x).chunk(2, dim=1)
        return x + a * torch.sigmoid(b)


class CausalGatedConv(nn.Module):
    """x + a * sigmoid(b), [a, b] = dilated conv1d(x padded on the left) + W z: position t sees only t and before."""

    def __init__(self, channels: int, latent_dim: int, dilation: int, kernel: int = 3):
        super().__init__()
        self.pad = (kernel - 1) * dilation
        self.conv = nn.Conv1d(channels, 2 * channels, kernel, dilation=dilation)
        self.from_z = nn.Linear(latent_dim, 2 * channels)

    def forward(self, x: Tensor, z: Tensor) -> Tensor:  # x: (N, d, T), z: (N, latent)
        a, b = (self.conv(F.pad(x, (self.pad, 0))) + self.from_z(z)[:, :, None]).chunk(2, dim=1)
        return x + a * torch.sigmoid(b)


class CausalLikelihood:
    """p(x | z) = prod_t p(x_t | x_<t, z) of the causal decoder; `log_prob` runs it with teacher forcing.

    z may carry leading sample dimensions (k, B, latent), as the objectives pass it; x is (B, L).
    """

    def __init__(self, model: PoemVAE, z: Tensor):
        self.model, self.z = model, z

    def log_prob(self, x: Tensor) -> Tensor:
        lead = self.z.shape[:-1]
        z = self.z.reshape(-1, self.model.latent_dim)
        tokens = x.expand(*lead, x.shape[-1]).reshape(-1, x.shape[-1])
        logits = self.model.causal_logits(z, tokens[:, :-1])
        logp = torch.log_softmax(logits, dim=-1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
        return logp.sum(-1).reshape(lead)


class PoemVAE(nn.Module):
    """p(poem | z): every character from z alone (`parallel`), or from z and the characters before (`causal`);
    z ~ N(0, I); q(z | poem) from a gated CNN. `free_bits` shapes training only (see objectives.elbo)."""

    def __init__(self, vocab_size: int, length: int, latent_dim: int = 64, embedding_dim: int = 64,
                 encoder_layers: int = 2, decoder_layers: int = 1, beta: float = 1.0, kl: str = "analytic",
                 decoder: str = "parallel", free_bits: float = 0.0):
        super().__init__()
        if decoder not in DECODERS:
            raise ValueError(f"decoder must be one of {', '.join(DECODERS)}; got {decoder!r}")
        self.vocab_size, self.length, self.latent_dim, self.beta, self.kl = vocab_size, length, latent_dim, beta, kl
        self.decoder_kind, self.free_bits = decoder, free_bits
        d = embedding_dim
        self.embed = nn.Embedding(vocab_size, d)
        self.encoder = nn.Sequential(*[GatedConv(d) for _ in range(encoder_layers)])
        self.to_posterior = nn.Linear(d, 2 * latent_dim)
        if decoder == "parallel":
            self.from_z = nn.Linear(latent_dim, length * d)
            self.decoder = nn.Sequential(*[GatedConv(d) for _ in range(decoder_layers)])
        else:  # token vocab_size is the start mark; dilations 1, 2, 4, ... widen the view to the whole poem
            self.previous = nn.Embedding(vocab_size + 1, d)
            self.causal = nn.ModuleList(CausalGatedConv(d, latent_dim, 2 ** (i % 5)) for i in range(decoder_layers))
        self.to_logits = nn.Linear(d, vocab_size)
        self.register_buffer("_device_probe", torch.zeros(()), persistent=False)

    @property
    def parallel(self) -> bool:
        """Whether every position is decoded from z alone (no dependence on earlier characters)."""
        return self.decoder_kind == "parallel"

    def causal_logits(self, z: Tensor, before: Tensor) -> Tensor:
        """(N, T+1, V) logits of positions 0..T given z (N, latent) and the T characters `before` them."""
        start = torch.full((len(before), 1), self.vocab_size, dtype=torch.long, device=before.device)
        h = self.previous(torch.cat([start, before], dim=1)).transpose(1, 2)
        for layer in self.causal:
            h = layer(h, z)
        return self.to_logits(h.transpose(1, 2)).float()

    def posterior(self, x: Tensor, y: Tensor | None = None) -> Distribution:
        h = self.encoder(self.embed(x).transpose(1, 2)).mean(dim=2)  # global average pooling over positions
        mu, logvar = self.to_posterior(h).float().chunk(2, dim=-1)
        return diagonal_gaussian(mu, logvar.clamp(-30.0, 20.0))

    def prior(self, y: Tensor | None = None) -> Distribution:
        return standard_normal(self.latent_dim, device=self._device_probe.device)

    def logits(self, z: Tensor) -> Tensor:
        """(..., L, V) logits for codes z of shape (..., latent): the parallel decoder's, all positions at once."""
        if not self.parallel:
            raise ValueError("a causal decoder has no logits from z alone; use step_decoder(z) or greedy(z)")
        lead = z.shape[:-1]
        h = self.from_z(z.reshape(-1, self.latent_dim)).view(-1, self.embed.embedding_dim, self.length)
        out = self.to_logits(self.decoder(h).transpose(1, 2))
        return out.reshape(*lead, self.length, self.vocab_size).float()

    def likelihood(self, z: Tensor, y: Tensor | None = None) -> Distribution | CausalLikelihood:
        return categorical_likelihood(self.logits(z)) if self.parallel else CausalLikelihood(self, z)

    def forward(self, x: Tensor, y: Tensor | None = None, beta: float | None = None) -> ELBOTerms:
        return elbo(self, x, kl=self.kl, beta=self.beta if beta is None else beta, free_bits=self.free_bits)

    @torch.no_grad()
    def greedy(self, z: Tensor) -> Tensor:
        """(N, L) the most likely character at each position given z (and, causally, the ones chosen before)."""
        if self.parallel:
            return self.logits(z).argmax(-1)
        step = self.step_decoder(z)
        ids = torch.zeros(len(z), 0, dtype=torch.long, device=z.device)
        for _ in range(self.length):
            ids = torch.cat([ids, step(ids).argmax(-1, keepdim=True)], dim=1)
        return ids

    def step_decoder(self, z: Tensor) -> Callable[[Tensor], Tensor]:
        """Logits (B, V) of position t given z (B, latent) and the prefix (B, t), for any decoder."""
        if self.parallel:
            logits = self.logits(z)
            return lambda prefix: logits[:, prefix.shape[1]]
        return lambda prefix: self.causal_logits(z, prefix)[:, -1]

    @torch.no_grad()
    def generate(self, n: int, temperature: float = 0.0, z: Tensor | None = None,
                 generator: torch.Generator | None = None, forbid: list[int] | None = None) -> Tensor:
        """(n, L) token ids from z ~ N(0, I) (or the given z): argmax (temperature 0) or sampled."""
        device = self._device_probe.device
        if z is None:
            z = torch.randn(n, self.latent_dim, generator=generator).to(device)
        if not self.parallel:
            return self._generate_causal(z, temperature, generator, forbid)
        logits = self.logits(z)
        if forbid:
            logits[..., forbid] = float("-inf")
        if temperature <= 0:
            return logits.argmax(-1)
        probs = torch.softmax(logits / temperature, dim=-1)
        flat = torch.multinomial(probs.reshape(-1, self.vocab_size).cpu(), 1, generator=generator)
        return flat.view(n, self.length).to(device)

    def _generate_causal(self, z: Tensor, temperature: float, generator: torch.Generator | None,
                         forbid: list[int] | None) -> Tensor:
        """Ancestral sampling, one position at a time."""
        step = self.step_decoder(z)
        ids = torch.zeros(len(z), 0, dtype=torch.long, device=z.device)
        for _ in range(self.length):
            logits = step(ids)
            if forbid:
                logits[:, forbid] = float("-inf")
            if temperature <= 0:
                nxt = logits.argmax(-1, keepdim=True)
            else:
                probs = torch.softmax(logits / temperature, dim=-1).cpu()
                nxt = torch.multinomial(probs, 1, generator=generator).to(z.device)
            ids = torch.cat([ids, nxt], dim=1)
        return ids
