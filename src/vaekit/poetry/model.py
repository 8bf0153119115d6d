"""Su Jianlin's CNN + VAE poem model, over vaekit's posterior / prior / likelihood interface.

A five-character poem has a fixed length, so encoder and decoder can be pure 1-D CNNs and the decoder
emits every position at once (non-autoregressive): sample z ~ N(0, I), one forward pass, a poem.
Encoder: embedding, two residual gated convolutions (kernel 3, h[:d] * sigmoid(h[d:])), global average
pooling, dense layers for mean and log-variance. Decoder: dense to L x d, residual gated convolution(s),
a softmax over the vocabulary at each position.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.distributions import Distribution

from vaekit.distributions import categorical_likelihood, diagonal_gaussian, standard_normal
from vaekit.objectives import ELBOTerms, elbo

__all__ = ["GatedConv", "PoemVAE"]


class GatedConv(nn.Module):
    """x + a * sigmoid(b), [a, b] = conv1d(x): the residual gated convolution of Su's model (kernel 3)."""

    def __init__(self, channels: int, kernel: int = 3):
        super().__init__()
        self.conv = nn.Conv1d(channels, 2 * channels, kernel, padding=kernel // 2)

    def forward(self, x: Tensor) -> Tensor:  # x: (B, d, L)
        a, b = self.conv(x).chunk(2, dim=1)
        return x + a * torch.sigmoid(b)


class PoemVAE(nn.Module):
    """p(poem | z) = prod_t Categorical(softmax(logits_t(z))), z ~ N(0, I); q(z | poem) from a gated CNN."""

    def __init__(self, vocab_size: int, length: int, latent_dim: int = 64, embedding_dim: int = 64,
                 encoder_layers: int = 2, decoder_layers: int = 1, beta: float = 1.0, kl: str = "analytic"):
        super().__init__()
        self.vocab_size, self.length, self.latent_dim, self.beta, self.kl = vocab_size, length, latent_dim, beta, kl
        d = embedding_dim
        self.embed = nn.Embedding(vocab_size, d)
        self.encoder = nn.Sequential(*[GatedConv(d) for _ in range(encoder_layers)])
        self.to_posterior = nn.Linear(d, 2 * latent_dim)
        self.from_z = nn.Linear(latent_dim, length * d)
        self.decoder = nn.Sequential(*[GatedConv(d) for _ in range(decoder_layers)])
        self.to_logits = nn.Linear(d, vocab_size)
        self.register_buffer("_device_probe", torch.zeros(()), persistent=False)

    def posterior(self, x: Tensor, y: Tensor | None = None) -> Distribution:
        h = self.encoder(self.embed(x).transpose(1, 2)).mean(dim=2)  # global average pooling over positions
        mu, logvar = self.to_posterior(h).float().chunk(2, dim=-1)
        return diagonal_gaussian(mu, logvar.clamp(-30.0, 20.0))

    def prior(self, y: Tensor | None = None) -> Distribution:
        return standard_normal(self.latent_dim, device=self._device_probe.device)

    def logits(self, z: Tensor) -> Tensor:
        """(..., L, V) logits for codes z of shape (..., latent)."""
        lead = z.shape[:-1]
        h = self.from_z(z.reshape(-1, self.latent_dim)).view(-1, self.embed.embedding_dim, self.length)
        out = self.to_logits(self.decoder(h).transpose(1, 2))
        return out.reshape(*lead, self.length, self.vocab_size).float()

    def likelihood(self, z: Tensor, y: Tensor | None = None) -> Distribution:
        return categorical_likelihood(self.logits(z))

    def forward(self, x: Tensor, y: Tensor | None = None, beta: float | None = None) -> ELBOTerms:
        return elbo(self, x, kl=self.kl, beta=self.beta if beta is None else beta)

    def step_decoder(self, z: Tensor) -> Callable[[Tensor], Tensor]:
        """Logits (B, V) of position t given the prefix (B, t): every position is decoded from z alone here."""
        logits = self.logits(z)
        return lambda prefix: logits[:, prefix.shape[1]]

    @torch.no_grad()
    def generate(self, n: int, temperature: float = 0.0, z: Tensor | None = None,
                 generator: torch.Generator | None = None, forbid: list[int] | None = None) -> Tensor:
        """(n, L) token ids from z ~ N(0, I) (or the given z): argmax (temperature 0) or sampled."""
        device = self._device_probe.device
        if z is None:
            z = torch.randn(n, self.latent_dim, generator=generator).to(device)
        logits = self.logits(z)
        if forbid:
            logits[..., forbid] = float("-inf")
        if temperature <= 0:
            return logits.argmax(-1)
        probs = torch.softmax(logits / temperature, dim=-1)
        flat = torch.multinomial(probs.reshape(-1, self.vocab_size).cpu(), 1, generator=generator)
        return flat.view(n, self.length).to(device)
