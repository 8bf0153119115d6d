"""The VampPrior (--prior vamp): p(z) is the mixture of the encoder's posteriors at learned pseudo-inputs, its KL
estimated by Monte Carlo, for the flat vae and iwae and the top group of an hvae; a poem model's prior setting stays
its own."""

import pytest
import torch
from torch.distributions import MixtureSameFamily

from steps import adam_steps
from vaekit.config import ConfigError, TrainConfig
from vaekit.models import build_model
from vaekit.objectives import elbo, iwae_bound


def vamp_model(k: int = 20):
    torch.manual_seed(0)
    config = TrainConfig.from_flat(prior="vamp", pseudo_inputs=k, arch="mlp", hidden=[64], latent_dim=4,
                                   image_shape=[1, 28, 28], num_classes=10)
    return build_model(config.model_config()), config


def test_the_vampprior_takes_the_monte_carlo_kl_and_only_unconditional_models():
    _, config = vamp_model()
    assert config.model.kl == "mc" and "kl" in config.chosen
    with pytest.raises(ConfigError, match="no closed form"):
        TrainConfig.from_flat(prior="vamp", kl="analytic")
    with pytest.raises(ConfigError, match="unconditional vae or iwae"):
        TrainConfig.from_flat(prior="vamp", model="cvae")
    with pytest.raises(ConfigError, match="prior must be one of standard, vamp"):
        TrainConfig.from_flat(prior="fitted")  # a poem model's prior, not an image model's
    assert TrainConfig.from_flat(task="poem", model="vae", prior="fitted").poem.prior == "fitted"


def test_the_prior_is_the_mixture_of_the_pseudo_inputs_posteriors():
    model, _ = vamp_model(k=20)
    prior = model.prior()
    assert isinstance(prior, MixtureSameFamily) and prior.mixture_distribution.logits.shape == (20,)
    z = torch.randn(7, 4)
    q = model.posterior(torch.sigmoid(model.pseudo_inputs))
    expected = torch.logsumexp(q.log_prob(z[:, None, :]), dim=1) - torch.log(torch.tensor(20.0))
    torch.testing.assert_close(prior.log_prob(z), expected)


def test_the_elbo_is_the_one_sample_bound_and_training_moves_the_pseudo_inputs():
    model, _ = vamp_model()
    x = torch.rand(16, 1, 28, 28, generator=torch.Generator().manual_seed(1)).round()
    with torch.no_grad():
        bounds = torch.stack([elbo(model, x, kl="mc").elbo for _ in range(300)])
        ones = torch.stack([iwae_bound(model, x, k=1) for _ in range(300)])
    se = (bounds.var(0) / 300 + ones.var(0) / 300).sqrt()
    assert bool(((bounds.mean(0) - ones.mean(0)).abs() < 4 * se + 1e-6).all())
    before = model.pseudo_inputs.detach().clone()
    losses = adam_steps(model, x, steps=20, lr=1e-2)
    assert losses[-1] < losses[0] and not torch.equal(before, model.pseudo_inputs)



def test_a_temperature_draws_nearer_the_priors_means():
    model = vamp_model(k=3)[0].eval()
    torch.manual_seed(0)
    cold = model.sample(12, temperature=0.0)  # each draw a pseudo-input's posterior mean: at most 3 images
    assert len({tuple(image.flatten().tolist()) for image in cold}) <= 3
    warm = model.sample(12, temperature=0.5)
    assert len({tuple(image.flatten().tolist()) for image in warm}) == 12
    torch.manual_seed(1)
    default = model.sample(4)
    torch.manual_seed(1)
    assert torch.equal(default, model.sample(4, temperature=1.0))  # 1 is the prior itself
    flat = build_model(TrainConfig.from_flat(arch="mlp", hidden=[32], latent_dim=4, image_shape=[1, 28, 28],
                                             num_classes=10).model_config()).eval()
    images = flat.sample(5, temperature=0.0)
    assert torch.allclose(images, images[:1].expand_as(images), atol=1e-5)  # the standard prior's mean, five times


def hvae_vamp(k: int = 3):
    torch.manual_seed(0)
    config = TrainConfig.from_flat(model="hvae", prior="vamp", pseudo_inputs=k, width=8, latent_dim=2, groups=[1, 1],
                                   image_shape=[1, 28, 28], num_classes=10)
    return build_model(config.model_config()), config


def test_an_hvae_takes_the_vampprior_as_its_top_groups_prior_only():
    model, config = hvae_vamp(k=4)
    assert config.model.kl == "mc" and "kl" in config.chosen
    x = torch.rand(6, 1, 28, 28, generator=torch.Generator().manual_seed(1)).round()
    adam_steps(model, x, steps=3, lr=1e-2)  # q starts as p; a few steps part the pseudo-inputs' posteriors
    groups, _ = model.latent_groups(x)
    assert isinstance(groups[0].p, MixtureSameFamily) and not isinstance(groups[1].p, MixtureSameFamily)
    q = model.posterior(torch.sigmoid(model.pseudo_inputs))
    z = torch.randn(5, model.latent_dim)
    expected = torch.logsumexp(q.log_prob(z[:, None, :]), dim=1) - torch.log(torch.tensor(4.0))
    torch.testing.assert_close(model.prior().log_prob(z), expected)
    with torch.no_grad():  # the ELBO (every group's KL by Monte Carlo) is the k=1 importance bound in expectation
        bounds = torch.stack([elbo(model, x, kl="mc").elbo for _ in range(300)])
        ones = torch.stack([iwae_bound(model, x, k=1) for _ in range(300)])
        many = iwae_bound(model, x, k=64, chunk_size=16)  # draws in chunks: the mixture broadcasts over (S, B)
    se = (bounds.var(0) / 300 + ones.var(0) / 300).sqrt()
    assert bool(((bounds.mean(0) - ones.mean(0)).abs() < 4 * se + 1e-6).all())
    assert float(many.mean()) > float(ones.mean())


def test_an_hvaes_pseudo_inputs_learn_and_its_cold_top_group_draws_one_of_them():
    model, _ = hvae_vamp(k=3)
    x = torch.rand(8, 1, 28, 28, generator=torch.Generator().manual_seed(2)).round()
    before = model.pseudo_inputs.detach().clone()
    losses = adam_steps(model, x, steps=20, lr=1e-2, seed=0)
    assert losses[-1] < losses[0] and not torch.equal(before, model.pseudo_inputs)
    model.eval()
    cold = model.sample(12, temperature=[0.0, 0.0])  # the top group at a pseudo-input's posterior mean, the rest at p's
    assert len({tuple(image.flatten().tolist()) for image in cold}) <= 3
    again = [model.sample(4, temperature=[0.5, 1.0], generator=torch.Generator().manual_seed(7)) for _ in range(2)]
    assert torch.equal(*again) and len({tuple(image.flatten().tolist()) for image in again[0]}) == 4


def test_decoding_a_given_top_draw_does_not_read_the_pseudo_inputs():
    from unittest import mock

    model = hvae_vamp(k=3)[0].eval()
    with mock.patch.object(type(model), "_vamp_prior", side_effect=AssertionError("the pseudo-inputs were read")):
        images = model.decode(torch.zeros(2, model.latent_dim), lower_temperature=0.5)  # the page's latent pad
    assert images.shape == (2, 1, 28, 28)
