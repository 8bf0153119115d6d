"""A top-down hierarchical VAE (LVAE / NVAE / VDVAE in miniature): groups of latents at several resolutions.

`config.groups` gives the number of groups at each resolution, coarsest first: S counts place them at 1/2^S, ...,
1/4, 1/2 of the image's side ([2, 2], the default: two at 1/4 and two at 1/2). A bottom-up residual path reads the
image at each of those sides. The top-down path starts from a learned state at the coarsest and, group by group,
computes from the same state the prior p(z_l | z_<l) and the posterior
q(z_l | z_<l, x), the posterior as a residual of the prior (NVAE's residual normal: its mean and log-scale are the
prior's plus what the bottom-up features add); the draw joins the state, and the state goes up a resolution at a
time to the image, where the likelihood head of the flat models turns it into p(x | z).

The objectives read the groups through `latent_groups`: the ELBO sums one KL a group, the importance weight sums
log p - log q over the groups. The figures and the page move through the top group (`posterior`, `prior`,
`decode`), the lower groups drawn at their prior mean; `reconstruct` uses every group's posterior mean.

With `prior="vamp"` the top group's prior is the VampPrior (Tomczak & Welling 2018): the mixture of the top
group's posteriors at K learned pseudo-inputs, in place of a learned diagonal Gaussian; its KL has no closed form,
so such a run takes the Monte Carlo KL for every group. Each pass reads the K pseudo-inputs up the bottom-up path.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.distributions import Categorical, Distribution, Independent, MixtureSameFamily, Normal

from vaekit.distributions import draw_at_temperature
from vaekit.models.config import ModelConfig
from vaekit.models.likelihoods import ImageLikelihood
from vaekit.models.trainable import Trainable
from vaekit.objectives import ELBOTerms, LatentGroup, LatentModel, elbo

__all__ = ["HVAE"]

MIN_LOG_SCALE = -7.0  # a group's scale stays above e^-7: a posterior narrower than that only feeds NaNs


class ResBlock(nn.Module):
    """x + conv(gelu(conv(gelu(x)))): the residual cell of both paths (the second conv starts at zero)."""

    def __init__(self, channels: int):
        super().__init__()
        self.a = nn.Conv2d(channels, channels, 3, padding=1)
        self.b = nn.Conv2d(channels, channels, 3, padding=1)
        nn.init.zeros_(self.b.weight)
        nn.init.zeros_(self.b.bias)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.b(F.gelu(self.a(F.gelu(x))))


class TopDownGroup(nn.Module):
    """One group: its prior and posterior from the state (and the bottom-up features), and the draw's way back."""

    def __init__(self, channels: int, latent: int):
        super().__init__()
        self.prior = nn.Conv2d(channels, 2 * latent, 3, padding=1)
        self.posterior = nn.Conv2d(2 * channels, 2 * latent, 3, padding=1)
        nn.init.zeros_(self.posterior.weight)  # q starts as p: the KL starts at 0
        nn.init.zeros_(self.posterior.bias)
        self.project = nn.Conv2d(latent, channels, 1)
        self.cell = ResBlock(channels)

    @staticmethod
    def _normal(params: Tensor) -> Independent:
        mu, log_scale = params.float().chunk(2, dim=1)
        scale = torch.exp(log_scale.clamp(min=MIN_LOG_SCALE, max=5.0))
        return Independent(Normal(mu.flatten(1), scale.flatten(1), validate_args=False), 1)

    def prior_of(self, h: Tensor) -> Tensor:
        return self.prior(h)

    def posterior_of(self, h: Tensor, feature: Tensor, prior_params: Tensor) -> Tensor:
        return prior_params + self.posterior(torch.cat([h, feature], dim=1))  # the residual normal

    def absorb(self, h: Tensor, z: Tensor, shape: torch.Size) -> Tensor:
        return self.cell(h + self.project(z.reshape(len(h), -1, *shape[-2:]).to(h.dtype)))


class HVAE(LatentModel, Trainable):
    """Groups of latents at 1/2^S, ..., 1/2 of the image's side (`config.groups`, S counts, coarsest first), each
    with `config.latent_dim` channels; residual cells `config.width` wide."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        c, h, w = config.image_shape
        self.groups_at = list(config.groups)
        scales = len(self.groups_at)
        if h % 2**scales or w % 2**scales:
            raise ValueError(f"{scales} resolutions of groups halve the image's side {scales} times, so its sides must "
                             f"divide by {2**scales}; got {h}x{w}: give --groups fewer counts or choose --image-size")
        width, latent = config.width, config.latent_dim
        self.shapes = [(h >> s, w >> s) for s in range(scales, 0, -1)]  # the resolutions of the groups, top first
        self.stem = nn.Conv2d(c, width, 3, padding=1)
        self.down = nn.ModuleList(nn.Sequential(nn.Conv2d(width, width, 3, stride=2, padding=1), ResBlock(width))
                                  for _ in range(scales))  # down[i]: from 1/2^i of the side to 1/2^(i+1)
        self.start = nn.Parameter(torch.zeros(1, width, *self.shapes[0]))
        self.blocks = nn.ModuleList(TopDownGroup(width, latent) for _ in range(sum(self.groups_at)))
        self.up = nn.ModuleList(nn.ConvTranspose2d(width, width, 4, stride=2, padding=1)
                                for _ in range(scales))  # up[j]: from the j-th resolution, top first, to the next
        self.out = nn.Sequential(ResBlock(width), nn.GELU(), nn.Conv2d(width, c, 3, padding=1))
        self.head = ImageLikelihood(config.likelihood, config.gaussian_scale, config.learn_scale, config.scale_per,
                                    (c, h, w))
        self.latent_dim = latent * self.shapes[0][0] * self.shapes[0][1]  # the top group's size
        if config.prior == "vamp":  # pseudo-inputs in logit space, starting near grey, as in the flat VAE
            self.pseudo_inputs = nn.Parameter(0.01 * torch.randn(config.pseudo_inputs, c, h, w))

    @property
    def kl_estimator(self) -> str:  # type: ignore[override]
        return self.config.kl

    # ------------------------------------------------------------------ the two paths

    def _bottom_up(self, x: Tensor) -> list[Tensor]:
        """Features at each resolution of the groups, top (coarsest) first."""
        h = self.stem(x * 2.0 - 1.0)
        features = []
        for down in self.down:
            h = down(h)
            features.append(h)
        return features[::-1]

    @property
    def latent_group_count(self) -> int:
        """How many groups of latents the model draws, top to bottom."""
        return sum(self.groups_at)

    def temperatures(self, temperature: float | Sequence[float]) -> list[float]:
        """One temperature a group from one for all, or from one a group (checked: a sentence names the count)."""
        if isinstance(temperature, int | float):
            return [float(temperature)] * self.latent_group_count
        values = [float(t) for t in temperature]
        if len(values) != self.latent_group_count or any(not t >= 0 for t in values):
            raise ValueError(f"give one temperature >= 0 for all groups or one for each of the "
                             f"{self.latent_group_count} groups (top first); got {len(values)} values")
        return values

    def _top_down(self, features: list[Tensor] | None, n: int, given_top: Tensor | None = None,
                  temperature: float | Sequence[float] = 1.0, use_means: bool = False,
                  generator: torch.Generator | None = None) -> tuple[list[LatentGroup], Tensor]:
        """Walk the groups top to bottom: with `features` (inferring) each group draws from q, else from p at
        its temperature (one for all or one a group; 0: the prior mean), the noise from `generator` if given;
        `given_top` fixes the top group's draw (a VampPrior's pseudo-inputs are then not read); `use_means` takes
        q's mean."""
        temperatures = self.temperatures(temperature)
        h = self.start.expand(n, -1, -1, -1)
        groups: list[LatentGroup] = []
        index = 0
        for scale, count in enumerate(self.groups_at):
            if scale > 0:  # up a resolution, whether or not groups stand there
                h = self.up[scale - 1](h)
            for _ in range(count):
                block = self.blocks[index]
                prior_params = block.prior_of(h)
                fixed = index == 0 and given_top is not None and features is None  # decoding a given top draw
                vamp = index == 0 and self.config.prior == "vamp" and not fixed  # (its K pseudo-inputs unread then)
                p = self._vamp_prior() if vamp else block._normal(prior_params)
                if features is not None:
                    q = block._normal(block.posterior_of(h, features[scale], prior_params))
                    z = q.mean if use_means else q.rsample()
                elif isinstance(p, MixtureSameFamily):
                    q = p
                    z = draw_at_temperature(p, n, temperatures[index], generator)
                else:
                    q, t = p, temperatures[index]
                    noise = torch.randn(p.mean.shape, generator=generator, dtype=p.mean.dtype).to(p.mean.device) \
                        if generator is not None else torch.randn_like(p.mean)
                    z = p.mean + t * p.stddev * noise if t > 0 else p.mean
                if index == 0 and given_top is not None:
                    z = given_top
                groups.append(LatentGroup(q, p, z))
                h = block.absorb(h, z, h.shape)
                index += 1
        h = self.up[-1](h)
        return groups, self.out(h)

    # ------------------------------------------------------------------ the interface the objectives read

    def latent_groups(self, x: Tensor, y: Tensor | None = None, samples: int | None = None
                      ) -> tuple[list[LatentGroup], Distribution]:
        features = self._bottom_up(x)
        n = len(x)
        if samples is not None:  # every draw of every image in one batch: (samples * B, ...)
            features = [f.repeat(samples, *([1] * (f.ndim - 1))) for f in features]
            n = samples * len(x)
        groups, params = self._top_down(features, n)
        px = self.head(params)
        if samples is None:
            return groups, px
        lead = (samples, len(x))
        reshaped = [LatentGroup(_unflatten(g.q, lead), _unflatten(g.p, lead) if isinstance(g.p, Independent) else g.p,
                                g.z.reshape(*lead, -1)) for g in groups]  # a VampPrior broadcasts as it is
        return reshaped, _unflatten_image(px, self.head, params, lead)

    def posterior(self, x: Tensor, y: Tensor | None = None) -> Distribution:
        """q of the top group (what the figures and the page move through)."""
        features = self._bottom_up(x)
        block = self.blocks[0]
        h = self.start.expand(len(x), -1, -1, -1)
        prior_params = block.prior_of(h)
        return block._normal(block.posterior_of(h, features[0], prior_params))

    def posterior_shifts(self, x: Tensor, y: Tensor | None = None) -> list[Tensor]:
        """Each group's posterior mean minus its prior mean, in prior standard deviations, every group above it at
        its posterior mean: a collapsed group (q = p) shifts nothing, though its prior follows the groups above."""
        groups, _ = self._top_down(self._bottom_up(x), len(x), use_means=True)
        return [(g.q.mean - g.p.mean) / g.p.stddev for g in groups]

    def prior(self, y: Tensor | None = None) -> Distribution:
        """p of the top group, which depends on nothing drawn before it."""
        if self.config.prior == "vamp":
            return self._vamp_prior()
        return self.blocks[0]._normal(self.blocks[0].prior_of(self.start))

    def _vamp_prior(self) -> MixtureSameFamily:
        """The top group's VampPrior: (1/K) sum_k q(z_top | u_k) over the K learned pseudo-inputs u_k."""
        q = self.posterior(torch.sigmoid(self.pseudo_inputs))
        return MixtureSameFamily(Categorical(logits=torch.zeros(len(self.pseudo_inputs), device=q.mean.device)), q)

    def likelihood(self, z: Tensor, y: Tensor | None = None, lower_temperature: float = 0.0,
                   generator: torch.Generator | None = None) -> Distribution:
        """p(x | top group = z), the lower groups at their prior mean, or drawn at `lower_temperature`."""
        lead = z.shape[:-1]
        flat = z.reshape(-1, z.shape[-1])
        _, params = self._top_down(None, len(flat), given_top=flat, temperature=lower_temperature, generator=generator)
        return self.head(params.reshape(*lead, *params.shape[1:]))

    def forward(self, x: Tensor, y: Tensor | None = None, beta: float | None = None) -> ELBOTerms:
        """The ELBO's training terms: the likelihood and one KL a group (weighted by beta while it warms up, and
        balanced across the groups then under `kl_balance`)."""
        cfg = self.config
        return elbo(self, x, y, kl=cfg.kl, beta=cfg.beta if beta is None else beta, kl_balance=cfg.kl_balance)

    # ------------------------------------------------------------------ figures

    @torch.no_grad()
    def sample(self, n: int, label: int | None = None, temperature: float | Sequence[float] = 1.0,
               generator: torch.Generator | None = None) -> Tensor:
        """n images drawn ancestrally through every group at its temperature (one for all, or one a group, top
        first: lower ones trade variety for clean strokes), shown as the mean of p(x|z)."""
        self.config.check_label(label)
        _, params = self._top_down(None, n, temperature=temperature, generator=generator)
        return self.head(params).mean.clamp(0.0, 1.0)

    @torch.no_grad()
    def decode(self, z: Tensor, y: Tensor | None = None, lower_temperature: float = 0.0,
               generator: torch.Generator | None = None) -> Tensor:
        """The mean of p(x | top group = z), the lower groups at their prior mean or drawn at `lower_temperature`."""
        return self.likelihood(z, y, lower_temperature, generator).mean.clamp(0.0, 1.0)

    @torch.no_grad()
    def likelihood_at_means(self, x: Tensor, y: Tensor | None = None) -> Distribution:
        """p(x | z) with every group, not the top one alone, at its posterior mean."""
        _, params = self._top_down(self._bottom_up(x), len(x), use_means=True)
        return self.head(params)

    def reconstruct(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """Every group at its posterior mean, decoded."""
        return self.likelihood_at_means(x, y).mean.clamp(0.0, 1.0)


def _unflatten(d: Independent, lead: tuple[int, int]) -> Independent:
    """A (S * B, D) diagonal Gaussian as (S, B, D)."""
    base = d.base_dist
    return Independent(Normal(base.loc.reshape(*lead, -1), base.scale.reshape(*lead, -1), validate_args=False), 1)


def _unflatten_image(px: Distribution, head: ImageLikelihood, params: Tensor, lead: tuple[int, int]) -> Distribution:
    """p(x | z) over (S * B, C, H, W) rebuilt over (S, B, C, H, W), so log_prob(x) broadcasts against (B, ...)."""
    return head(params.reshape(*lead, *params.shape[1:]))
