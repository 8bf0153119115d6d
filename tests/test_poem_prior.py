"""What an encoder refit can change: the fitted poem prior (a full-covariance Gaussian matched to the aggregate
posterior, and its closed-form KL), and a deeper encoder whose layers look further apart."""

import json

import pytest
import torch
from torch.distributions import MultivariateNormal, kl_divergence

from vaekit.config import ConfigError, TrainConfig
from vaekit.distributions import diagonal_gaussian, full_gaussian
from vaekit.objectives import elbo
from vaekit.poetry.model import GatedConv, PoemVAE
from vaekit.poetry.refit import fit_prior
from vaekit.poetry.task import poem_model


def _trained(prior: str = "fitted", poems: int = 96, steps: int = 40) -> tuple[PoemVAE, torch.Tensor]:
    """A small causal model trained a little on poems its z can carry (later lines repeat the first)."""
    torch.manual_seed(0)
    m = PoemVAE.build(50, latent_dim=6, embedding_dim=16, decoder="causal", decoder_layers=2, posterior_bn=0.9,
                prior=prior)
    torch.manual_seed(1)
    x = torch.randint(1, 50, (poems, 20))
    x[:, 5:] = x[:, :5].repeat(1, 3)
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    for _ in range(steps):
        m.train()
        loss = m(x).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    return m.eval(), x


def test_the_kl_of_a_diagonal_posterior_against_a_full_prior_is_the_closed_form():
    torch.manual_seed(0)
    d = 5
    mu, logvar = torch.randn(7, d), torch.randn(7, d)
    a = torch.randn(d, d)
    factor = torch.linalg.cholesky(a @ a.T + 0.5 * torch.eye(d))
    q, p = diagonal_gaussian(mu, logvar), full_gaussian(torch.randn(d), factor)
    kl = kl_divergence(q, p)
    as_full = MultivariateNormal(mu, scale_tril=torch.diag_embed(q.stddev))
    assert torch.allclose(kl, kl_divergence(as_full, p), atol=1e-4)  # torch's own pair, built the slow way
    z = q.sample((200_000,))
    assert torch.allclose(kl, (q.log_prob(z) - p.log_prob(z)).mean(0), atol=0.05)  # and Monte Carlo


def test_fitting_the_prior_tightens_the_true_bound_by_exactly_the_kl_it_saves():
    m, x = _trained()
    torch.manual_seed(5)
    with torch.no_grad():
        before = elbo(m, x)
    saved = fit_prior(m, x)
    torch.manual_seed(5)  # the same draws: encoder and decoder are untouched, so the likelihood term is the same
    with torch.no_grad():
        after = elbo(m, x)
    assert torch.allclose(after.log_likelihood, before.log_likelihood)
    assert torch.allclose(after.elbo - before.elbo, before.kl - after.kl, atol=1e-4)
    assert saved["kl_after"] < saved["kl_before"] - 0.05
    assert saved["kl_after"] == pytest.approx(float(after.kl.mean()), abs=1e-4)


def test_the_fitted_prior_is_the_best_gaussian_and_writes_where_the_posteriors_lie():
    m, x = _trained()
    fit_prior(m, x)
    with torch.no_grad():
        q = m.posterior(x)
        best = float(kl_divergence(q, m.prior()).mean())
        loc, factor = m.prior_loc.clone(), m.prior_scale_tril.clone()
        torch.manual_seed(6)
        for _ in range(5):  # any other Gaussian costs more KL on average (moment matching is the minimiser)
            m.prior_loc.copy_(loc + 0.1 * torch.randn_like(loc))
            m.prior_scale_tril.copy_(factor + torch.diag(0.05 * torch.randn(len(loc))).tril())
            assert float(kl_divergence(q, m.prior()).mean()) > best
        m.prior_loc.copy_(loc)
        m.prior_scale_tril.copy_(factor)
        # the prior's moments are the aggregate posterior's, and codes drawn for writing follow them
        draws = q.sample((2000,)).reshape(-1, m.latent_dim)
        codes = m.sample_prior(len(draws), generator=torch.Generator().manual_seed(7))
        for sample in (draws, codes):
            assert torch.allclose(sample.mean(0), loc, atol=0.06)
            assert torch.allclose(torch.cov(sample.T), factor @ factor.T, atol=0.08)
    state = m.state_dict()
    again = PoemVAE.build(50, latent_dim=6, embedding_dim=16, decoder="causal", decoder_layers=2, posterior_bn=0.9,
                    prior="fitted")
    again.load_state_dict(state)  # the fitted prior travels with the weights
    assert torch.equal(again.prior().scale_tril, m.prior().scale_tril)


def test_a_fitted_prior_is_refused_where_it_cannot_work():
    with pytest.raises(ValueError, match="standard, fitted"):
        PoemVAE.build(50, prior="mixture")
    with pytest.raises(ValueError, match="free bits"):
        PoemVAE.build(50, decoder="causal", free_bits=0.5, prior="fitted")
    with pytest.raises(ValueError, match="unthemed"):
        PoemVAE.build(50, decoder="causal", themes=3, conditioning="both", prior="fitted")
    m, x = _trained(prior="standard", steps=1)
    with pytest.raises(ValueError, match="prior='fitted'"):
        fit_prior(m, x)


def test_a_trained_model_converts_in_place_and_a_deepened_encoder_starts_where_it_was():
    m, x = _trained(prior="standard")
    with torch.no_grad():
        q = m.posterior(x)
        kl = kl_divergence(q, m.prior())
        m.deepen_encoder(4)
        deeper = m.posterior(x)
    assert len(m.encoder) == 4
    assert torch.allclose(deeper.mean, q.mean, atol=1e-6) and torch.allclose(deeper.stddev, q.stddev, atol=1e-6)
    with pytest.raises(ValueError, match="only be deepened"):
        m.deepen_encoder(3)
    m.use_fitted_prior()  # N(0, I) until fitted: the same KL, now in the full-covariance form
    with torch.no_grad():
        assert torch.allclose(kl_divergence(q, m.prior()), kl, atol=1e-5)
    saved = fit_prior(m, x)
    assert saved["kl_after"] < saved["kl_before"]


def test_a_dilated_gated_conv_reads_its_taps_that_far_apart():
    torch.manual_seed(0)
    for dilation in (1, 2, 4):
        layer = GatedConv(8, dilation=dilation)
        x = torch.randn(1, 8, 20)
        base = layer(x)
        assert base.shape == x.shape  # centred: as long as its input
        for offset in range(1, 6):
            moved = x.clone()
            moved[0, :, 10 + offset] += 1.0
            changed = not torch.allclose(layer(moved)[0, :, 10], base[0, :, 10])
            assert changed == (offset == dilation), (dilation, offset)


def test_redilating_the_encoder_resets_only_the_layers_whose_view_changes():
    m, x = _trained(prior="standard")
    m.deepen_encoder(3)
    kept = [layer.conv.weight.clone() for layer in m.encoder]
    with torch.no_grad():
        m.encoder[2].conv.weight.add_(0.1)  # as if trained: the layer is no longer the identity
        trained = m.posterior(x).mean
        m.dilate_encoder([1, 1, 4])
        assert [layer.conv.dilation[0] for layer in m.encoder] == [1, 1, 4]
        assert all(torch.equal(m.encoder[i].conv.weight, kept[i]) for i in (0, 1))
        assert not torch.allclose(m.posterior(x).mean, trained)  # the changed layer starts again ...
        m.encoder = m.encoder[:2]
        two = m.posterior(x).mean
    m.deepen_encoder(3)
    m.dilate_encoder([1, 1, 4])
    with torch.no_grad():  # ... as the identity: the posterior is the two unchanged layers' answer
        assert torch.allclose(m.posterior(x).mean, two, atol=1e-6)
    with pytest.raises(ValueError, match="3 layers"):
        m.dilate_encoder([1, 2])


def test_the_config_carries_the_encoder_dilations_and_refuses_a_wrong_count():
    cfg = TrainConfig.from_flat(task="poem", model="vae", form="quatrain", decoder="causal", encoder_layers=3,
                                encoder_dilations=[1, 2, 4], embedding_dim=16, latent_dim=6)
    built = poem_model(cfg, 50)
    assert [layer.conv.dilation[0] for layer in built.encoder] == [1, 2, 4]
    again = poem_model(TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))), 50)
    again.load_state_dict(built.state_dict())  # the weights and the config that built them agree
    assert [layer.conv.dilation[0] for layer in again.encoder] == [1, 2, 4]
    for wrong in ([1, 2], [1, 2, 0], [1, 2, 64]):
        with pytest.raises(ConfigError, match="encoder_dilations"):
            TrainConfig.from_flat(task="poem", model="vae", form="quatrain", encoder_layers=3, encoder_dilations=wrong)
