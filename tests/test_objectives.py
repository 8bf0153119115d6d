import math

import pytest
import torch

from ppca import PPCA
from vaekit.objectives import elbo, iwae_bound


@pytest.fixture
def ppca():
    return PPCA(n=4, d=2, noise=0.5, seed=0)


def test_exact_posterior_makes_the_elbo_equal_log_px(ppca):
    x = ppca.sample_x(16)
    exact = ppca.log_marginal(x)
    mc = elbo(ppca, x, kl="mc").elbo  # with q = p(z|x), log p(x,z) - log q(z|x) = log p(x) for every z
    torch.testing.assert_close(mc, exact, rtol=0, atol=1e-9)
    draws = torch.stack([elbo(ppca, x, kl="analytic").elbo for _ in range(4000)])
    se = draws.std(0) / math.sqrt(len(draws))
    assert ((draws.mean(0) - exact).abs() < 4 * se + 1e-9).all()


def test_monte_carlo_and_analytic_elbo_agree_in_expectation(ppca):
    ppca.posterior_kind = "poor"
    x = ppca.sample_x(8)
    mc = torch.stack([elbo(ppca, x, kl="mc").elbo for _ in range(20_000)])
    an = torch.stack([elbo(ppca, x, kl="analytic").elbo for _ in range(20_000)])
    se = torch.sqrt(mc.var(0) / len(mc) + an.var(0) / len(an))
    assert ((mc.mean(0) - an.mean(0)).abs() < 4 * se).all()


def test_elbo_is_below_log_px_and_beta_only_changes_the_loss(ppca):
    ppca.posterior_kind = "poor"
    x = ppca.sample_x(8)
    torch.manual_seed(5)
    t1 = elbo(ppca, x, beta=1.0)
    torch.manual_seed(5)
    t4 = elbo(ppca, x, beta=4.0)
    torch.testing.assert_close(t1.elbo, t4.elbo)
    assert t4.loss > t1.loss
    assert (torch.stack([elbo(ppca, x).elbo for _ in range(2000)]).mean(0) < ppca.log_marginal(x)).all()


def test_elbo_rejects_unknown_kl_estimator(ppca):
    with pytest.raises(ValueError, match="analytic"):
        elbo(ppca, ppca.sample_x(2), kl="closed")


def test_iwae_k1_has_the_expectation_of_the_elbo_and_grows_with_k(ppca):
    ppca.posterior_kind = "poor"
    x = ppca.sample_x(4)
    reps = 3000
    means, ses = {}, {}
    for k in (1, 4, 32):
        draws = torch.stack([iwae_bound(ppca, x, k) for _ in range(reps)])
        means[k], ses[k] = draws.mean(0), draws.std(0) / math.sqrt(reps)
    e = torch.stack([elbo(ppca, x, kl="analytic").elbo for _ in range(reps)])
    assert ((means[1] - e.mean(0)).abs() < 4 * torch.sqrt(ses[1] ** 2 + (e.std(0) / math.sqrt(reps)) ** 2)).all()
    assert (means[4] > means[1] + 2 * ses[4]).all()
    assert (means[32] > means[4] + 2 * ses[32]).all()


def test_iwae_approaches_log_px_as_k_grows_with_a_poor_posterior(ppca):
    ppca.posterior_kind = "poor"
    x = ppca.sample_x(8)
    exact = ppca.log_marginal(x)
    gap = {k: (exact - torch.stack([iwae_bound(ppca, x, k, chunk_size=500) for _ in range(20)]).mean(0)).mean().item()
           for k in (1, 100, 5000)}
    assert gap[1] > gap[100] > gap[5000] >= -0.01
    assert gap[1] > 0.5 and gap[5000] < 0.05


def test_iwae_is_the_same_whatever_the_chunk_size(ppca):
    ppca.posterior_kind = "poor"
    x = ppca.sample_x(8)
    values = []
    for chunk in (1, 7, 64, 1000):
        torch.manual_seed(11)  # the same stream of z, drawn in different chunks
        values.append(iwae_bound(ppca, x, 64, chunk_size=chunk) if chunk <= 64 else iwae_bound(ppca, x, 64))
    torch.manual_seed(11)
    whole = iwae_bound(ppca, x, 64, chunk_size=64)
    for v in values:
        torch.testing.assert_close(v, whole, rtol=1e-10, atol=1e-10)


def test_iwae_memory_is_bounded_by_the_chunk_not_k(ppca):
    """The decoder never sees more than chunk_size samples at once, whatever k: memory does not grow with k."""
    ppca.posterior_kind = "poor"
    seen = []
    original = ppca.likelihood

    def spy(z, y=None):
        seen.append(z.shape[0])
        return original(z, y)

    ppca.likelihood = spy
    x = ppca.sample_x(3)
    iwae_bound(ppca, x, k=10_000, chunk_size=256)
    assert max(seen) == 256 and sum(seen) == 10_000


def test_iwae_rejects_bad_k(ppca):
    with pytest.raises(ValueError, match="k must be"):
        iwae_bound(ppca, ppca.sample_x(2), k=0)
