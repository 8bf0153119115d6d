import math

import numpy as np
import pytest
import scipy.stats
import torch
from torch.distributions import Categorical, Independent, Normal, kl_divergence

from vaekit import math as vm


def test_kl_discrete_worked_example():
    assert vm.kl_discrete([0.2, 0.4, 0.4], [0.4, 0.2, 0.4]) == pytest.approx(0.2 * math.log(0.5) + 0.4 * math.log(2))
    assert round(vm.kl_discrete([0.2, 0.4, 0.4], [0.4, 0.2, 0.4]), 4) == 0.1386


def test_kl_discrete_matches_torch_and_scipy_on_random_distributions():
    g = torch.Generator().manual_seed(3)
    p = torch.softmax(torch.randn(50, 7, generator=g, dtype=torch.float64), -1)
    q = torch.softmax(torch.randn(50, 7, generator=g, dtype=torch.float64), -1)
    ours = vm.kl_discrete(p, q)
    torch_kl = kl_divergence(Categorical(probs=p), Categorical(probs=q))
    scipy_kl = torch.tensor([scipy.stats.entropy(a, b) for a, b in zip(p.numpy(), q.numpy(), strict=True)])
    torch.testing.assert_close(ours, torch_kl)
    torch.testing.assert_close(ours, scipy_kl)
    assert (ours >= 0).all()


def test_kl_discrete_zero_terms_and_infinite_support_mismatch():
    assert vm.kl_discrete([0.0, 1.0], [0.5, 0.5]) == pytest.approx(math.log(2))
    assert vm.kl_discrete([0.5, 0.5], [1.0, 0.0]) == math.inf
    assert vm.kl_discrete([0.3, 0.7], [0.3, 0.7]) == pytest.approx(0.0)


@pytest.mark.parametrize(
    ("p", "q", "message"),
    [
        ([0.5, -0.1, 0.6], [0.3, 0.3, 0.4], "negative"),
        ([0.5, 0.6], [0.5, 0.5], "sum to 1"),
        ([0.5, 0.5], [0.2, 0.3, 0.5], "same shape"),
        ([float("nan"), 1.0], [0.5, 0.5], "NaN"),
    ],
)
def test_kl_discrete_rejects_non_distributions(p, q, message):
    with pytest.raises(ValueError, match=message):
        vm.kl_discrete(p, q)


def _diag(mu, logvar):
    return Independent(Normal(mu, torch.exp(0.5 * logvar)), 1)


def test_kl_normal_std_matches_torch_in_float64():
    g = torch.Generator().manual_seed(0)
    mu = torch.randn(64, 8, generator=g, dtype=torch.float64) * 2
    logvar = torch.randn(64, 8, generator=g, dtype=torch.float64)
    expected = kl_divergence(_diag(mu, logvar), _diag(torch.zeros_like(mu), torch.zeros_like(mu)))
    torch.testing.assert_close(vm.kl_normal_std(mu, logvar), expected, rtol=1e-12, atol=1e-12)


def test_kl_normal_general_matches_torch_and_reduces_to_std():
    g = torch.Generator().manual_seed(1)
    a, b, c, d = (torch.randn(32, 5, generator=g, dtype=torch.float64) for _ in range(4))
    torch.testing.assert_close(vm.kl_normal(a, b, c, d), kl_divergence(_diag(a, b), _diag(c, d)), rtol=1e-12, atol=1e-12)
    zeros = torch.zeros_like(a)
    torch.testing.assert_close(vm.kl_normal(a, b, zeros, zeros), vm.kl_normal_std(a, b))


def test_kl_normal_std_agrees_with_monte_carlo():
    mu = torch.tensor([0.7, -1.2], dtype=torch.float64)
    logvar = torch.tensor([-0.5, 0.4], dtype=torch.float64)
    q = _diag(mu, logvar)
    z = q.sample((200_000,))
    mc = q.log_prob(z) - _diag(torch.zeros(2, dtype=torch.float64), torch.zeros(2, dtype=torch.float64)).log_prob(z)
    se = mc.std() / math.sqrt(len(mc))
    assert abs(mc.mean() - vm.kl_normal_std(mu, logvar)) < 4 * se


def test_log_normal_pdf_matches_torch_and_scipy():
    g = torch.Generator().manual_seed(2)
    x, mean, logvar = (torch.randn(100, generator=g, dtype=torch.float64) for _ in range(3))
    ours = vm.log_normal_pdf(x, mean, logvar)
    torch.testing.assert_close(ours, Normal(mean, torch.exp(0.5 * logvar)).log_prob(x))
    sp = scipy.stats.norm.logpdf(x.numpy(), mean.numpy(), np.exp(0.5 * logvar.numpy()))
    np.testing.assert_allclose(ours.numpy(), sp, rtol=1e-12)


def test_reparameterize_has_the_right_moments_and_gradients():
    mu = torch.tensor([1.0, -2.0], requires_grad=True)
    logvar = torch.tensor([0.0, math.log(4.0)], requires_grad=True)
    eps = torch.randn(100_000, 2, generator=torch.Generator().manual_seed(0))
    z = vm.reparameterize(mu, logvar, eps)
    torch.testing.assert_close(z.mean(0), mu.detach(), atol=0.03, rtol=0)
    torch.testing.assert_close(z.std(0), torch.tensor([1.0, 2.0]), atol=0.03, rtol=0)
    z.sum().backward()
    # d z / d mu = 1 per sample; d z / d logvar = 0.5 sigma eps, which averages to ~0
    torch.testing.assert_close(mu.grad, torch.full((2,), 100_000.0))
    assert abs(logvar.grad[1].item()) < 0.05 * 100_000


def test_discretized_logistic_is_the_binned_logistic_of_scipy_and_sums_to_one():
    from vaekit.distributions import DiscretizedLogistic

    rng = np.random.default_rng(0)
    loc, log_scale = rng.uniform(-0.1, 1.1, 6), rng.uniform(-6, -1, 6)
    d = DiscretizedLogistic(torch.tensor(loc)[:, None], torch.tensor(log_scale)[:, None])
    levels = torch.arange(256, dtype=torch.float64) / 255
    log_p = d.log_prob(levels.expand(6, 256))
    assert torch.allclose(log_p.exp().sum(1), torch.ones(6, dtype=torch.float64), atol=1e-9)
    edges = np.concatenate([[-np.inf], (np.arange(255) + 0.5) / 255, [np.inf]])  # level k owns [k-1/2, k+1/2]/255
    cdf = scipy.stats.logistic.cdf(edges[None, :], loc[:, None], np.exp(log_scale)[:, None])
    expected = np.diff(cdf, axis=1)
    fine = expected > 1e-8  # below, differences of CDFs near 1 lose their digits in double precision
    assert np.allclose(log_p.numpy()[fine], np.log(expected[fine]), rtol=1e-6, atol=1e-8)


def test_discretized_logistic_is_finite_and_has_gradients_far_in_the_tails():
    from vaekit.distributions import DiscretizedLogistic

    loc = torch.tensor([0.5, 0.0, 1.0], requires_grad=True)
    log_scale = torch.full((3,), -9.0, requires_grad=True)  # a tiny scale: the bins far away have ~0 mass
    log_p = DiscretizedLogistic(loc, log_scale).log_prob(torch.tensor([1.0, 1.0, 0.0]))
    assert bool(torch.isfinite(log_p).all()) and bool((log_p < -1000).all())
    log_p.sum().backward()
    assert bool(torch.isfinite(loc.grad).all()) and bool((loc.grad.abs() > 0).all())


def test_discretized_logistic_samples_are_levels_with_the_right_mean():
    from vaekit.distributions import DiscretizedLogistic

    torch.manual_seed(0)
    d = DiscretizedLogistic(torch.tensor([0.3, 0.7]), torch.log(torch.tensor([0.05, 0.02])))
    x = d.sample((20000,))
    assert torch.equal(x * 255, (x * 255).round()) and float(x.min()) >= 0 and float(x.max()) <= 1
    assert torch.allclose(x.mean(0), torch.tensor([0.3, 0.7]), atol=3e-3)
    assert torch.allclose(x.std(0), torch.tensor([0.05, 0.02]) * math.pi / math.sqrt(3), rtol=0.05)


def test_logit_bernoulli_log_prob_and_gradient_are_torchs():
    """vaekit's two-pass Bernoulli log_prob against torch's, in float64: binary and grey targets, far tails,
    and x broadcast over k samples as importance sampling uses it."""
    from torch.distributions import Bernoulli, Independent

    from vaekit.distributions import LogitBernoulli, bernoulli_likelihood

    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(7, 3, 1, 4, 4, generator=gen, dtype=torch.float64) * 10
    logits[0, 0, 0, 0] = torch.tensor([-200.0, -40.0, 40.0, 200.0], dtype=torch.float64)
    for x in ((torch.rand(3, 1, 4, 4, generator=gen) > 0.5).double(), torch.rand(3, 1, 4, 4, generator=gen).double()):
        a = logits.clone().requires_grad_()
        b = logits.clone().requires_grad_()
        ours = LogitBernoulli(logits=a, validate_args=False).log_prob(x)
        theirs = Bernoulli(logits=b, validate_args=False).log_prob(x)
        # softplus(l) is l itself past l = 20: the term dropped, log1p(exp(-20)), is 2e-9 nats a pixel
        torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=3e-9)
        ours.sum().backward()
        theirs.sum().backward()
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-12, atol=3e-9)
        # the summed log_prob of the image likelihood, formed in place, against the elementwise one summed
        c = logits.clone().requires_grad_()
        fast = bernoulli_likelihood(c).log_prob(x)
        general = Independent(LogitBernoulli(logits=b.detach().clone().requires_grad_(), validate_args=False),
                              3)
        slow = general.log_prob(x)
        torch.testing.assert_close(fast, slow, rtol=1e-12, atol=1e-9)
        fast.sum().backward()
        slow.sum().backward()
        torch.testing.assert_close(c.grad, general.base_dist.logits.grad, rtol=1e-12, atol=1e-12)
    px = bernoulli_likelihood(logits.float())
    assert px.event_shape == (1, 4, 4) and px.log_prob(x.float()).shape == (7, 3)
    wide = x.float().expand(2, 7, 3, 1, 4, 4)  # a value wider than the logits, and another dtype, take the general path
    torch.testing.assert_close(px.log_prob(wide), px.log_prob(x.float()).expand(2, 7, 3))
    assert px.log_prob(x).dtype == torch.float64
    torch.testing.assert_close(px.mean, torch.sigmoid(logits.float()))
