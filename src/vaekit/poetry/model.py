"""Su Jianlin's CNN + VAE poem model, over vaekit's posterior / prior / likelihood interface.

A five-character poem has a fixed length, so encoder and decoder can be pure 1-D CNNs. Two decoders:

- `parallel` (Su's): every position at once from z (non-autoregressive): z ~ N(0, I), one forward pass, a poem;
- `causal`: character t from z and the characters before it, through left-padded dilated gated
  convolutions with z entering every layer (after Yang et al. 2017), so line 4 can agree with line 2.

- `gru`: the same dependence through a GRU whose first state and every input carry z (the usual text-VAE
  decoder, Bowman et al. 2016), kept for the comparison in docs/benchmarks.md.

Every decoder offers the same `step_decoder(z)` to the constrained decoder, which never knows which it drives.
With `themes` > 0 the model is a CVAE over poem themes: the theme enters encoder and decoder ("input"), or
only the prior p(z | theme) = N(mu_theme, I) (Su's "prior" scheme), or all three ("both"), as for images.

Remedies against posterior collapse, each shaping training only (the reported ELBO stays the true bound):
free bits (a KL floor per dimension), BN-VAE (batch-norm on the posterior mean with a fixed scale gamma, so
E[KL] >= latent_dim * gamma^2 / 2, Zhu et al. 2020; with a theme's own prior mean the normalised part is the
posterior mean's distance from it, so the floor counts what z says beyond the theme), a bag-of-characters
loss (z predicts which characters the poem holds), word dropout (a share of the characters an autoregressive
decoder reads is hidden as □, so it must take them from z; Bowman et al. 2016), and autoencoder pretraining with
the decoder reset after it (Li et al. 2019, in the Trainer).

`prior="fitted"` replaces N(0, I) by a full-covariance Gaussian N(m, L L^T), which `vaekit.poetry.refit.fit_prior`
matches to the training poems' aggregate posterior once the model is trained (N(0, I) until then): of all
Gaussian priors it gives the smallest average KL, so the bound tightens by what the posteriors' spread and
correlations differ from the unit ball's, and poems written from it are drawn where the encoder puts poems.
Encoder: embedding, two residual gated convolutions (kernel 3, h[:d] * sigmoid(h[d:])), global average
pooling (`mean`, Su's: which phrases, not where) or every position's features in order (`flatten`), dense
layers for mean and log-variance. Decoder: dense to L x d, residual gated convolution(s),
a softmax over the vocabulary at each position.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.distributions import Distribution, Independent, Normal

from vaekit.data.poetry import form_length
from vaekit.distributions import diagonal_gaussian, full_gaussian, standard_normal
from vaekit.models.config import CONDITIONINGS, ModelConfig, label_in_networks, label_in_prior
from vaekit.models.trainable import Trainable
from vaekit.objectives import ELBOTerms, LatentModel, elbo
from vaekit.poetry.config import DECODERS, POOLINGS, PRIORS, PoemConfig
from vaekit.poetry.decoders import CausalGatedConv, CausalLikelihood, CausalStepper, decoder_kind
from vaekit.poetry.layers import GatedConv

__all__ = ["GatedConv", "CausalGatedConv", "CausalLikelihood", "CausalStepper", "PoemVAE", "DECODERS", "CONDITIONINGS",
           "PRIORS"]

THEME_MEAN_SPREAD = 3.0  # as CLASS_MEAN_SPREAD for images: prior means that start apart stay apart


def _identity_gated_conv(channels: int, dilation: int = 1) -> GatedConv:
    """A GatedConv whose residual branch is zero (the a-half of its convolution cleared): the identity until trained."""
    layer = GatedConv(channels, dilation=dilation)
    with torch.no_grad():
        layer.conv.weight[:channels].zero_()
        layer.conv.bias[:channels].zero_()
    return layer


class PoemVAE(LatentModel, Trainable):
    """p(poem | z): every character from z alone (`parallel`), or from z and the characters before (`causal`,
    `gru`); z ~ N(0, I) (N(mu_theme, I), or a fitted N(m, L L^T)); q(z | poem) from a gated CNN.

    `free_bits`, `posterior_bn`, `bag_weight` and `word_dropout` shape training only (see the module docstring).
    """

    def __init__(self, config: PoemConfig, model: ModelConfig, vocab_size: int):
        """The model a run's settings describe: `config` the poem section, `model` the latent size, the objective
        (beta, kl) and the theme conditioning (a cvae over the themes when `model.model` is cvae), and the size of
        the vocabulary the task built."""
        super().__init__()
        self.config = config
        latent_dim, beta, kl = model.latent_dim, model.beta, model.kl
        themes, conditioning = (model.num_classes if model.model == "cvae" else 0), model.conditioning
        length = form_length(config.form)
        decoder, embedding_dim, encoder_layers = config.decoder, config.embedding_dim, config.encoder_layers
        decoder_layers, free_bits, posterior_bn = config.decoder_layers, config.free_bits, config.posterior_bn
        bag_weight, dropout, word_dropout = config.bag_weight, config.dropout, config.word_dropout
        encoder_pooling, prior, encoder_dilations = config.encoder_pooling, config.prior, config.encoder_dilations
        self.kind = decoder_kind(decoder)
        if conditioning not in CONDITIONINGS:
            raise ValueError(f"conditioning must be one of {', '.join(CONDITIONINGS)}; got {conditioning!r}")
        if prior not in PRIORS:
            raise ValueError(f"prior must be one of {', '.join(PRIORS)}; got {prior!r}")
        self.vocab_size, self.length, self.latent_dim, self.beta, self.kl = vocab_size, length, latent_dim, beta, kl
        self.decoder_kind, self.free_bits, self.bag_weight = decoder, free_bits, bag_weight  # the kind's name
        self.themes, self.conditioning = themes, conditioning
        self.posterior_bn = posterior_bn
        if word_dropout and not self.kind.autoregressive:
            raise ValueError(f"word dropout hides the characters an autoregressive decoder reads; the {decoder} "
                             "decoder reads none")
        self.word_dropout = word_dropout
        self.drop = nn.Dropout(dropout)  # on the decoder's input and residual branches: 31k poems overfit without
        labels_in = themes if themes and label_in_networks(conditioning) else 0
        code = latent_dim + labels_in  # what the decoder reads: z, and the theme one-hot under "input"
        d = embedding_dim
        self.embed = self.kind.embedding(vocab_size, d)
        dilations = list(encoder_dilations) if encoder_dilations is not None else [1] * encoder_layers
        if len(dilations) != encoder_layers:
            raise ValueError(f"encoder_dilations needs one dilation for each of the {encoder_layers} encoder layers; "
                             f"got {dilations}")
        self.encoder = nn.Sequential(*[GatedConv(d, dilation=k) for k in dilations])
        if encoder_pooling not in POOLINGS:
            raise ValueError(f"encoder_pooling must be one of {', '.join(POOLINGS)}; got {encoder_pooling!r}")
        self.encoder_pooling = encoder_pooling
        summary = d * length if encoder_pooling == "flatten" else d
        self.to_posterior = nn.Linear(summary + labels_in, 2 * latent_dim)
        if posterior_bn > 0:
            self.mean_norm = nn.BatchNorm1d(latent_dim, affine=False)
            self.mean_shift = nn.Parameter(torch.zeros(latent_dim))
        if themes and label_in_prior(conditioning):
            self.theme_means = nn.Embedding(themes, latent_dim)
            nn.init.normal_(self.theme_means.weight, std=THEME_MEAN_SPREAD)
        if bag_weight > 0:
            self.to_bag = nn.Linear(code, vocab_size)
        self.kind.build(self, code, d, decoder_layers, dropout)
        self.register_buffer("_device_probe", torch.zeros(()), persistent=False)
        self.prior_kind = "standard"
        if prior == "fitted":
            self.use_fitted_prior()

    @classmethod
    def build(cls, vocab_size: int, form: str = "quatrain", latent_dim: int = 64, beta: float = 1.0,
              kl: str = "analytic", themes: int = 0, conditioning: str = "input", **settings: Any) -> PoemVAE:
        """A model from keyword settings, for scripts and tests: `settings` are PoemConfig fields, the rest go to
        the model section (a cvae over `themes` themes when given)."""
        model = ModelConfig(model="cvae" if themes else "vae", latent_dim=latent_dim, beta=beta, kl=kl,
                            conditioning=conditioning, num_classes=themes or 1)
        return cls(PoemConfig(form=form, **settings), model, vocab_size)

    def use_fitted_prior(self) -> None:
        """Make p(z) a full-covariance Gaussian N(m, L L^T), held in buffers: N(0, I) until
        `vaekit.poetry.refit.fit_prior` matches it to the posteriors, so a trained model converts in place."""
        if self.themes or self.free_bits:
            raise ValueError("a fitted prior is one Gaussian for unthemed models trained without free bits (free "
                             "bits count the KL per coordinate of a diagonal prior); use prior='standard'")
        device = self._device_probe.device
        self.register_buffer("prior_loc", torch.zeros(self.latent_dim, device=device))
        self.register_buffer("prior_scale_tril", torch.eye(self.latent_dim, device=device))
        self.prior_kind = "fitted"

    def dilate_encoder(self, dilations: Sequence[int]) -> None:
        """Give the encoder's layers these dilations: a layer whose dilation changes starts again as the identity
        (its residual branch at zero) and must be refitted; the others keep their weights."""
        if len(dilations) != len(self.encoder):
            raise ValueError(f"the encoder has {len(self.encoder)} layers; got {len(dilations)} dilations")
        d = self.embed.embedding_dim
        for i, k in enumerate(dilations):
            if self.encoder[i].conv.dilation[0] != k:
                self.encoder[i] = _identity_gated_conv(d, k).to(self._device_probe.device)

    def deepen_encoder(self, layers: int) -> None:
        """Add residual gated layers to the encoder until it has `layers`, each starting as the identity (its
        residual branch at zero), so a trained encoder's answer is unchanged until it is refitted."""
        if layers < len(self.encoder):
            raise ValueError(f"the encoder has {len(self.encoder)} layers; it can only be deepened, not to {layers}")
        d = self.embed.embedding_dim
        while len(self.encoder) < layers:
            self.encoder.append(_identity_gated_conv(d).to(self._device_probe.device))

    @property
    def uses_labels(self) -> bool:
        """Whether the model reads a theme y (the evaluation code passes labels only then)."""
        return self.themes > 0

    @property
    def kl_estimator(self) -> str:  # type: ignore[override]
        return self.kl

    @property
    def parallel(self) -> bool:
        """Whether every position is decoded from z alone (no dependence on earlier characters)."""
        return not self.kind.autoregressive

    def _code(self, z: Tensor, y: Tensor | None) -> Tensor:
        """What the decoder reads: z, with the theme one-hot beside it under "input" conditioning."""
        if not self.themes or not label_in_networks(self.conditioning):
            return z
        y = self._need_theme(y)
        return torch.cat([z, F.one_hot(y, self.themes).to(z.dtype).expand(*z.shape[:-1], self.themes)], dim=-1)

    def _need_theme(self, y: Tensor | None) -> Tensor:
        if y is None:
            raise ValueError("this poem model is conditioned on a theme; pass y (theme indices)")
        return y

    def _output(self, h: Tensor) -> Tensor:
        """Logits over the vocabulary from an autoregressive decoder's states (..., d), through the tied embedding."""
        return self.kind.output(self, h)

    def _output_log_prob(self, h: Tensor, target: Tensor) -> Tensor:
        return self.kind.output_log_prob(self, h, target)

    def causal_logits(self, z: Tensor, before: Tensor, y: Tensor | None = None) -> Tensor:
        """(N, T+1, V) logits of positions 0..T given z (N, latent) and the T characters `before` them."""
        return self._output(self._causal_states(z, before, y))

    def _causal_states(self, z: Tensor, before: Tensor, y: Tensor | None,
                       inputs: list[Tensor] | None = None) -> Tensor:
        """(N, T+1, d) decoder states of positions 0..T: the output layer reads them. A list given as `inputs`
        receives each causal layer's input (N, d, T+1), which `CausalStepper` keeps to go on from."""
        return self.kind.states(self, z, before, y, inputs)

    def figures(self, images: Tensor, labels: Tensor) -> dict[str, Tensor]:
        """No image grids: a poem model's samples are text (`vaekit poem write`)."""
        return {}

    def reset_decoder(self) -> None:
        """Re-initialise the decoder's own layers (the tied embedding stays): Li et al.'s step after pretraining."""
        for name in self.kind.layer_names:
            for m in getattr(self, name).modules():
                if hasattr(m, "reset_parameters") and m is not self:
                    m.reset_parameters()

    def posterior(self, x: Tensor, y: Tensor | None = None) -> Distribution:
        h = self.encoder(self.embed(x).transpose(1, 2))
        h = h.flatten(1) if self.encoder_pooling == "flatten" else h.mean(dim=2)
        if self.themes and label_in_networks(self.conditioning):
            h = torch.cat([h, F.one_hot(self._need_theme(y), self.themes).to(h.dtype)], dim=-1)
        mu, logvar = self.to_posterior(h).float().chunk(2, dim=-1)
        if self.posterior_bn > 0:
            mu = self.posterior_bn * self.mean_norm(mu) + self.mean_shift
            if self.themes and label_in_prior(self.conditioning):
                # normalised about the theme's prior mean: normalised about 0, the spread of the theme means
                # alone met the floor, and z collapsed to the theme (KL 2 nats a poem after 3 epochs)
                mu = mu + self.theme_means(self._need_theme(y))
        return diagonal_gaussian(mu, logvar.clamp(-30.0, 20.0))

    def prior(self, y: Tensor | None = None) -> Distribution:
        if self.themes and label_in_prior(self.conditioning):
            mu = self.theme_means(self._need_theme(y))
            return Independent(Normal(mu, torch.ones_like(mu), validate_args=False), 1)
        if self.prior_kind == "fitted":
            return full_gaussian(self.prior_loc.float(), self.prior_scale_tril.float())
        return standard_normal(self.latent_dim, device=self._device_probe.device)

    def logits(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        """(..., L, V) logits for codes z of shape (..., latent): the parallel decoder's, all positions at once."""
        if self.kind.autoregressive:
            raise ValueError("an autoregressive decoder has no logits from z alone; use step_decoder(z) or greedy(z)")
        return self.kind.logits(self, z, y)

    def likelihood(self, z: Tensor, y: Tensor | None = None) -> Distribution | CausalLikelihood:
        return self.kind.likelihood(self, z, y)

    def forward(self, x: Tensor, y: Tensor | None = None, beta: float | None = None) -> ELBOTerms:
        terms = elbo(self, x, y, kl=self.kl, beta=self.beta if beta is None else beta, free_bits=self.free_bits)
        if self.bag_weight > 0:  # z must predict which characters the poem holds, in any order
            assert terms.z is not None
            logp = torch.log_softmax(self.to_bag(self._code(terms.z, y)).float(), dim=-1)
            terms.loss = terms.loss - self.bag_weight * logp.gather(-1, x).sum(-1).mean()
        return terms

    @torch.no_grad()
    def greedy(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        """(N, L) the most likely character at each position given z (and, causally, the ones chosen before)."""
        return self.kind.greedy(self, z, y)

    def step_decoder(self, z: Tensor, y: Tensor | None = None) -> Callable[[Tensor], Tensor]:
        """Logits (B, V) of position t given z (B, latent) and the prefix (B, t), for any decoder."""
        return self.kind.step_decoder(self, z, y)

    def sample_prior(self, n: int, y: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
        """n codes from p(z) (or p(z | theme)), drawn on the CPU generator for reproducibility."""
        z = torch.randn(n, self.latent_dim, generator=generator).to(self._device_probe.device)
        if self.prior_kind == "fitted":
            z = self.prior_loc.float() + z @ self.prior_scale_tril.float().T
        if self.themes and label_in_prior(self.conditioning):
            z = z + self.theme_means(self._need_theme(y))
        return z

    @torch.no_grad()
    def generate(self, n: int, temperature: float = 0.0, z: Tensor | None = None,
                 generator: torch.Generator | None = None, forbid: list[int] | None = None,
                 y: Tensor | None = None) -> Tensor:
        """(n, L) token ids from z ~ p(z) (or the given z): argmax (temperature 0) or sampled."""
        if z is None:
            z = self.sample_prior(n, y, generator)
        return self.kind.generate(self, z, temperature, generator, forbid, y)
