"""A two-group linear-Gaussian model, drawn top-down, whose log p(x) and exact posterior have closed forms.

z2 ~ N(0, I_d2),  z1 | z2 ~ N(A z2 + a, t^2 I_d1),  x | z1 ~ N(W z1 + b, s^2 I_n)
=>  x ~ N(W a + b, W (A A^T + t^2 I) W^T + s^2 I).

Inference runs top-down as in LVAE / NVAE: q(z2 | x), then q(z1 | z2, x), each from Gaussian conditioning of the
exact joint posterior. With `quality` 1 the posterior is exact (every importance weight equals p(x)); below 1 its
means are shrunk and its scales widened, so the bound is loose at k = 1 and tightens as k grows.
"""

from __future__ import annotations

import torch
from torch.distributions import Independent, MultivariateNormal, Normal

from vaekit.objectives import LatentGroup, LatentModel


class TwoGroups(LatentModel):
    def __init__(self, n: int = 5, d1: int = 3, d2: int = 2, t: float = 0.6, s: float = 0.5, seed: int = 0,
                 quality: float = 1.0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        kw = {"generator": g, "dtype": torch.float64}
        self.A, self.a = torch.randn(d1, d2, **kw), torch.randn(d1, **kw)
        self.W, self.b = torch.randn(n, d1, **kw), torch.randn(n, **kw)
        self.t, self.s, self.d1, self.d2, self.quality = t, s, d1, d2, quality

    def _eye(self, d: int) -> torch.Tensor:
        return torch.eye(d, dtype=torch.float64)

    def sample_x(self, batch: int, seed: int = 1) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        z2 = torch.randn(batch, self.d2, generator=g, dtype=torch.float64)
        z1 = z2 @ self.A.T + self.a + self.t * torch.randn(batch, self.d1, generator=g, dtype=torch.float64)
        return z1 @ self.W.T + self.b + self.s * torch.randn(batch, len(self.b), generator=g, dtype=torch.float64)

    def log_marginal(self, x: torch.Tensor) -> torch.Tensor:
        cov_z1 = self.A @ self.A.T + self.t**2 * self._eye(self.d1)
        cov = self.W @ cov_z1 @ self.W.T + self.s**2 * self._eye(len(self.b))
        return MultivariateNormal(self.W @ self.a + self.b, covariance_matrix=cov).log_prob(x)

    # the joint posterior of (z1, z2) given x, as a precision matrix and a mean
    def _joint(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        d1, d2 = self.d1, self.d2
        lam = torch.zeros(d1 + d2, d1 + d2, dtype=torch.float64)  # -log p(x, z) is quadratic in (z1, z2)
        lam[:d1, :d1] = self.W.T @ self.W / self.s**2 + self._eye(d1) / self.t**2
        lam[:d1, d1:] = -self.A / self.t**2
        lam[d1:, :d1] = -self.A.T / self.t**2
        lam[d1:, d1:] = self.A.T @ self.A / self.t**2 + self._eye(d2)
        eta = torch.cat([(x - self.b) @ self.W / self.s**2 + self.a / self.t**2,
                         (-self.a @ self.A / self.t**2).expand(len(x), d2)], dim=-1)
        return lam, eta @ torch.linalg.inv(lam)  # (d, d), (B, d)

    def latent_groups(self, x, y=None, samples=None):  # noqa: ANN001, ANN201
        d1 = self.d1
        lam, mean = self._joint(x)
        cov = torch.linalg.inv(lam)
        q2_mean, q2_cov = mean[:, d1:], cov[d1:, d1:]
        spread = 1.0 / self.quality  # a worse q: means shrunk towards 0, scales widened
        q2 = MultivariateNormal(self.quality * q2_mean, covariance_matrix=(spread**2 * q2_cov).expand(len(x), -1, -1))
        z2 = q2.rsample(() if samples is None else (samples,))
        p2 = MultivariateNormal(torch.zeros_like(q2_mean), covariance_matrix=self._eye(self.d2))
        # q(z1 | z2, x): the conditional of the joint posterior; its precision is the z1 block of lam
        cond_cov = torch.linalg.inv(lam[:d1, :d1])
        cond_mean = mean[:, :d1] - (z2 - mean[:, d1:]) @ lam[d1:, :d1] @ cond_cov
        q1 = MultivariateNormal(self.quality * cond_mean,
                                covariance_matrix=(spread**2 * cond_cov).expand(*cond_mean.shape[:-1], d1, d1))
        z1 = q1.rsample()
        p1_mean = z2 @ self.A.T + self.a
        p1 = MultivariateNormal(p1_mean, covariance_matrix=self.t**2 * self._eye(d1))
        x_mean = z1 @ self.W.T + self.b
        return [LatentGroup(q2, p2, z2), LatentGroup(q1, p1, z1)], Independent(
            Normal(x_mean, torch.full_like(x_mean, self.s)), 1)
