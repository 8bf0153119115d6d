"""One interface for flat and hierarchical models: the objectives read a model's groups of latents, so a top-down
two-group model gets its ELBO, per-group KL terms, free bits and importance-weighted bound from the same code as
a flat VAE, and the bound approaches its exact log p(x) as k grows."""

import torch
from torch.distributions import Independent, Normal

from hierarchy import TwoGroups
from vaekit.objectives import LatentGroup, LatentModel, elbo, iwae_bound


def test_with_the_exact_posterior_every_weight_is_p_of_x():
    model = TwoGroups(seed=1)
    x = model.sample_x(16)
    exact = model.log_marginal(x)
    torch.manual_seed(0)
    torch.testing.assert_close(iwae_bound(model, x, k=1), exact, rtol=0, atol=1e-9)
    torch.testing.assert_close(iwae_bound(model, x, k=7, chunk_size=3), exact, rtol=0, atol=1e-9)


def test_the_bound_approaches_the_exact_log_likelihood_as_k_grows():
    model = TwoGroups(seed=2, quality=0.6)
    x = model.sample_x(64, seed=3)
    exact = model.log_marginal(x).mean()
    torch.manual_seed(0)
    bounds = {k: iwae_bound(model, x, k=k, chunk_size=500).mean() for k in (1, 10, 100, 5000)}
    gaps = {k: float(exact - b) for k, b in bounds.items()}
    assert gaps[1] > gaps[10] > gaps[100] > gaps[5000] > -0.01  # a lower bound that tightens
    assert gaps[1] > 0.5 and gaps[5000] < gaps[1] / 20, gaps


def test_the_elbo_sums_one_kl_term_a_group_and_both_estimators_agree():
    model = TwoGroups(seed=4, quality=0.7)
    x = model.sample_x(8, seed=5)
    torch.manual_seed(0)
    analytic = [elbo(model, x, kl="analytic") for _ in range(3000)]
    mc = [elbo(model, x, kl="mc") for _ in range(3000)]
    one = analytic[0]
    assert len(one.kl_groups) == 2 and one.kl_groups[0].shape == (8,)
    torch.testing.assert_close(one.kl_groups[0] + one.kl_groups[1], one.kl)
    torch.testing.assert_close(one.elbo, one.log_likelihood - one.kl)
    def agree(a: torch.Tensor, m: torch.Tensor) -> bool:
        """Means within four standard errors of their difference, example by example."""
        se = (a.var(0) / len(a) + m.var(0) / len(m)).sqrt()
        return bool(((a.mean(0) - m.mean(0)).abs() < 4 * se + 1e-9).all())

    for group in range(2):  # each group's closed form and Monte Carlo estimate agree in expectation
        assert agree(torch.stack([t.kl_groups[group] for t in analytic]), torch.stack([t.kl_groups[group] for t in mc]))
    bound_a, bound_m = torch.stack([t.elbo for t in analytic]), torch.stack([t.elbo for t in mc])
    assert agree(bound_a, bound_m)
    exact = model.log_marginal(x)
    assert bool((bound_a.mean(0) < exact).all())  # log p(x) >= ELBO, group by group summed


def test_the_elbo_of_the_exact_posterior_is_log_p_of_x_in_expectation():
    model = TwoGroups(seed=6)
    x = model.sample_x(4, seed=7)
    torch.manual_seed(0)
    mean = torch.stack([elbo(model, x, kl="analytic").elbo for _ in range(4000)]).mean(0)
    torch.testing.assert_close(mean, model.log_marginal(x), rtol=0, atol=0.05)


class TwoDiagonalGroups(LatentModel):
    """Two groups of diagonal Gaussians, the second's prior centred on the first's draw, for free bits."""

    def __init__(self):
        super().__init__()
        self.enc = torch.nn.Linear(4, 6)
        self.dec = torch.nn.Linear(3, 4)

    def latent_groups(self, x, y=None, samples=None):  # noqa: ANN001, ANN201
        h = self.enc(x)
        shape = () if samples is None else (samples,)
        q1 = Independent(Normal(h[:, :2], torch.ones(len(x), 2) * 0.5), 1)
        z1 = q1.rsample(shape)
        p1 = Independent(Normal(torch.zeros(len(x), 2), torch.ones(len(x), 2)), 1)
        q2 = Independent(Normal(h[:, 2:3] + z1[..., :1], torch.ones_like(z1[..., :1]) * 0.3), 1)
        z2 = q2.rsample()
        p2 = Independent(Normal(z1[..., :1], torch.ones_like(z1[..., :1])), 1)
        out = self.dec(torch.cat([z1, z2], -1))
        return [LatentGroup(q1, p1, z1), LatentGroup(q2, p2, z2)], Independent(Normal(out, torch.ones_like(out)), 1)


def test_free_bits_floor_every_dimension_of_every_group_and_leave_the_reported_bound_alone():
    torch.manual_seed(0)
    model, x = TwoDiagonalGroups(), torch.randn(32, 4)
    torch.manual_seed(1)
    plain = elbo(model, x)
    torch.manual_seed(1)
    floored = elbo(model, x, free_bits=5.0)
    torch.testing.assert_close(floored.elbo, plain.elbo)  # the bound reported is the true one
    dims = 2 + 1
    torch.testing.assert_close(floored.loss, -plain.log_likelihood.mean() + 5.0 * dims)  # every dimension below 5


def test_a_flat_model_is_one_group():
    from ppca import PPCA

    model = PPCA(n=6, d=2, noise=0.4, seed=3)
    x = model.sample_x(8)
    terms = elbo(model, x)
    assert len(terms.kl_groups) == 1
    torch.testing.assert_close(terms.kl_groups[0], terms.kl)
