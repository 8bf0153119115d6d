"""A linear-Gaussian model (probabilistic PCA) whose log p(x) and exact posterior have closed forms.

z ~ N(0, I_d), x | z ~ N(W z + b, s^2 I_n)  =>  x ~ N(b, W W^T + s^2 I),
q*(z|x) = N(S W^T (x - b) / s^2, S) with S = (I + W^T W / s^2)^-1.
"""

from __future__ import annotations

import torch
from torch.distributions import Independent, MultivariateNormal, Normal

from vaekit.objectives import LatentModel


class PPCA(LatentModel):
    def __init__(self, n: int = 4, d: int = 2, noise: float = 0.5, seed: int = 0, dtype=torch.float64):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.W = torch.randn(n, d, generator=g, dtype=dtype)
        self.b = torch.randn(n, generator=g, dtype=dtype)
        self.s = noise
        self.d = d
        self.posterior_kind = "exact"  # or "poor": N(0.5 * exact mean, 2 I), a deliberately bad q

    def sample_x(self, batch: int, seed: int = 1) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        z = torch.randn(batch, self.d, generator=g, dtype=self.W.dtype)
        return z @ self.W.T + self.b + self.s * torch.randn(batch, len(self.b), generator=g, dtype=self.W.dtype)

    def log_marginal(self, x: torch.Tensor) -> torch.Tensor:
        cov = self.W @ self.W.T + self.s**2 * torch.eye(len(self.b), dtype=self.W.dtype)
        return MultivariateNormal(self.b, covariance_matrix=cov).log_prob(x)

    def prior(self, y=None):
        zeros = torch.zeros(self.d, dtype=self.W.dtype)
        if self.posterior_kind == "exact":
            return MultivariateNormal(zeros, covariance_matrix=torch.eye(self.d, dtype=self.W.dtype))
        return Independent(Normal(zeros, torch.ones_like(zeros)), 1)

    def posterior(self, x, y=None):
        eye = torch.eye(self.d, dtype=self.W.dtype)
        S = torch.linalg.inv(eye + self.W.T @ self.W / self.s**2)
        mean = (x - self.b) @ self.W @ S / self.s**2  # S symmetric
        if self.posterior_kind == "exact":
            return MultivariateNormal(mean, covariance_matrix=S.expand(len(x), self.d, self.d))
        return Independent(Normal(0.5 * mean, torch.full_like(mean, 2.0 ** 0.5)), 1)

    def likelihood(self, z, y=None):
        mean = z @ self.W.T + self.b
        return Independent(Normal(mean, torch.full_like(mean, self.s)), 1)
