import pytest
import torch
from torch.distributions import Distribution

from vaekit.models import ModelConfig, build_model

FAMILY = [("ae", "input"), ("vae", "input"), ("iwae", "input"), ("cvae", "input"), ("cvae", "prior"), ("cvae", "both")]


@pytest.mark.parametrize("arch", ["mlp", "conv", "resnet"])
@pytest.mark.parametrize(("kind", "conditioning"), FAMILY)
def test_interface_contract_shapes(kind, conditioning, arch):
    model = build_model(ModelConfig(model=kind, arch=arch, latent_dim=6, width=8, hidden=[32],
                                    conditioning=conditioning))
    x = torch.rand(5, 1, 28, 28).bernoulli()
    y = torch.randint(0, 10, (5,)) if kind == "cvae" else None
    q, p = model.posterior(x, y), model.prior(y)
    assert isinstance(q, Distribution) and isinstance(p, Distribution)
    z = q.rsample((3,))
    assert z.shape == (3, 5, 6)
    px = model.likelihood(z, y)
    assert isinstance(px, Distribution) and px.log_prob(x).shape == (3, 5)
    terms = model(x, y)
    terms.loss.backward()
    grads = [p.grad for p in model.encoder.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert terms.elbo.shape == (5,)


def test_beta_vae_weights_only_the_kl():
    torch.manual_seed(0)
    base = build_model(ModelConfig(arch="mlp", hidden=[16], latent_dim=4))
    x = torch.rand(8, 1, 28, 28).bernoulli()
    torch.manual_seed(1)
    t1 = base(x, beta=1.0)
    torch.manual_seed(1)
    t5 = base(x, beta=5.0)
    torch.testing.assert_close(t5.loss - t1.loss, 4.0 * t1.kl.mean(), rtol=1e-3, atol=1e-3)  # float32 sums of ~540


def test_iwae_objective_is_at_least_the_elbo_on_average():
    model = build_model(ModelConfig(model="iwae", arch="mlp", hidden=[16], latent_dim=4, k=50))
    x = torch.rand(16, 1, 28, 28).bernoulli()
    with torch.no_grad():
        iw = torch.stack([model(x).elbo for _ in range(20)]).mean()
        model.config.model = "vae"
        el = torch.stack([model(x).elbo for _ in range(20)]).mean()
    assert iw > el


def test_cvae_prior_scheme_kl_has_the_class_mean_form():
    model = build_model(ModelConfig(model="cvae", arch="mlp", hidden=[16], latent_dim=3, conditioning="prior"))
    x = torch.rand(4, 1, 28, 28).bernoulli()
    y = torch.tensor([0, 3, 3, 9])
    q = model.posterior(x, y)
    mu, var = q.base_dist.loc, q.base_dist.scale ** 2
    mu_y = model.class_means(y)
    expected = 0.5 * ((mu - mu_y) ** 2 + var - var.log() - 1).sum(-1)
    torch.testing.assert_close(torch.distributions.kl_divergence(q, model.prior(y)), expected)


@pytest.mark.parametrize("conditioning", ["input", "prior", "both"])
def test_cvae_samples_a_requested_label(conditioning):
    model = build_model(ModelConfig(model="cvae", arch="conv", latent_dim=4, conditioning=conditioning))
    if conditioning != "input":  # move class 3's mean far away so that its samples' codes are recognisable
        with torch.no_grad():
            model.class_means.weight[3] = 50.0
        z = model.prior(torch.full((200,), 3)).sample()
        assert (z.mean(0) - 50.0).abs().max() < 0.5
    images = model.sample(7, label=3)
    assert images.shape == (7, 1, 28, 28) and images.min() >= 0 and images.max() <= 1
    with pytest.raises(ValueError, match="label must be in 0..9"):
        model.sample(2, label=10)


def test_cvae_both_scheme_reads_the_label_in_encoder_decoder_and_prior():
    torch.manual_seed(0)
    model = build_model(ModelConfig(model="cvae", arch="mlp", hidden=[16], latent_dim=3, conditioning="both"))
    x = torch.rand(2, 1, 28, 28).bernoulli()
    y0, y1 = torch.tensor([0, 0]), torch.tensor([1, 1])
    assert not torch.allclose(model.posterior(x, y0).mean, model.posterior(x, y1).mean)  # the encoder reads y
    z = torch.zeros(2, 3)
    assert not torch.allclose(model.likelihood(z, y0).mean, model.likelihood(z, y1).mean)  # so does the decoder
    torch.testing.assert_close(model.prior(y1).mean, model.class_means(y1))  # and the prior is p(z|y)


def test_autoencoder_is_deterministic_and_has_no_kl():
    model = build_model(ModelConfig(model="ae", arch="mlp", hidden=[16], latent_dim=4))
    x = torch.rand(4, 1, 28, 28)
    a, b = model(x), model(x)
    torch.testing.assert_close(a.loss, b.loss)
    assert (a.kl == 0).all()


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian", "continuous_bernoulli", "discretized_logistic"])
def test_likelihoods_give_normalised_or_known_values(likelihood):
    model = build_model(ModelConfig(arch="mlp", hidden=[16], latent_dim=4, likelihood=likelihood, gaussian_scale=0.5))
    z = torch.randn(2, 4)
    px = model.likelihood(z)
    x = torch.rand(2, 1, 28, 28)
    lp = px.log_prob(x)
    assert lp.shape == (2,) and torch.isfinite(lp).all()
    if likelihood == "gaussian":  # -log p = squared error / (2 s^2) + const: the squared-error loss
        mean = px.mean
        log_2pi = torch.log(torch.tensor(2 * torch.pi))
        manual = -0.5 * ((x - mean) / 0.5) ** 2 - torch.log(torch.tensor(0.5)) - 0.5 * log_2pi
        torch.testing.assert_close(lp, manual.sum((1, 2, 3)))
    if likelihood == "bernoulli":
        logits = torch.logit(px.mean.clamp(1e-6, 1 - 1e-6))
        bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="none").sum((1, 2, 3))
        torch.testing.assert_close(lp, -bce, rtol=1e-3, atol=1e-2)
    if likelihood == "discretized_logistic":  # a probability over the 256 levels of every pixel
        levels = torch.arange(256.0) / 255
        mass = px.base_dist.log_prob(levels.view(256, 1, 1, 1, 1)).exp().sum(0)
        torch.testing.assert_close(mass, torch.ones_like(mass), rtol=0, atol=1e-5)
        assert bool((lp < 0).all())


def test_learned_gaussian_scale_is_a_parameter():
    model = build_model(ModelConfig(arch="mlp", hidden=[8], likelihood="gaussian", learn_scale=True))
    assert any(name == "head.log_scale" for name, _ in model.named_parameters())


def test_conv_rejects_sizes_it_cannot_mirror():
    with pytest.raises(ValueError, match="divisible by 4"):
        build_model(ModelConfig(arch="conv", image_shape=(1, 30, 30)))


def test_batch_norm_nets_score_each_image_alone_once_trained():
    torch.manual_seed(0)
    model = build_model(ModelConfig(arch="conv", latent_dim=4, norm="batch", likelihood="discretized_logistic",
                                    learn_scale=True, image_shape=(3, 16, 16)))
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    x = (torch.rand(6, 3, 16, 16) * 255).round() / 255
    model(x).loss.backward()  # training mode: batch statistics, and running statistics updated
    model.eval()
    with torch.no_grad():  # evaluation: running statistics, so an image's terms do not depend on its batch
        alone = model.posterior(x[:1]).mean
        in_batch = model.posterior(x).mean[:1]
        torch.testing.assert_close(alone, in_batch)
        z = torch.randn(1, 4)
        torch.testing.assert_close(model.likelihood(z).log_prob(x[:1]),
                                   model.likelihood(z.expand(6, 4)).log_prob(x)[:1])


def test_the_onednn_linear_is_torchs_linear_and_leaves_gradients_to_torch():
    from vaekit import kernels

    w, b = torch.randn(784, 40), torch.randn(784)
    for x in (torch.randn(300, 40), torch.randn(3, 7, 40), torch.randn(40, 300).t()):  # 2-D, 3-D, transposed
        with torch.no_grad():
            fast = kernels.linear(x, w, b)
        torch.testing.assert_close(fast, torch.nn.functional.linear(x, w, b), rtol=1e-4, atol=1e-4)
        with torch.no_grad():
            torch.testing.assert_close(kernels.linear(x, w), x @ w.t(), rtol=1e-4, atol=1e-4)
    wg = w.clone().requires_grad_(True)
    out = kernels.linear(torch.randn(5, 40), wg, b)  # with gradients on, torch's own op: backward works
    out.sum().backward()
    assert wg.grad is not None and wg.grad.shape == w.shape


@pytest.mark.parametrize("out_channels", [1, 3, 6])
def test_the_output_convolution_computes_the_same_convolution_on_its_fast_path(out_channels):
    from vaekit.models.nets import OutputConv2d

    conv = OutputConv2d(16, out_channels)
    x = torch.randn(4, 16, 12, 10).relu()
    expected = torch.nn.functional.conv2d(x, conv.weight, conv.bias, padding=1)
    for layout in (torch.contiguous_format, torch.channels_last):
        with torch.no_grad():  # the tap-GEMM path: CPU, no gradients
            fast = conv(x.contiguous(memory_format=layout))
        assert fast.shape == expected.shape
        assert torch.allclose(fast, expected, atol=1e-5)
    grad_path = conv(x)  # training takes the library's convolution and still learns
    assert grad_path.requires_grad and torch.allclose(grad_path, expected, atol=1e-5)


def test_a_torch_whose_onednn_op_fails_gets_torchs_linear(monkeypatch):
    from vaekit import kernels

    def broken(*_args):
        raise RuntimeError("no such overload")

    kernels.onednn_linear_available.cache_clear()
    monkeypatch.setattr(torch.ops.mkldnn, "_linear_pointwise", broken, raising=False)
    try:
        assert not kernels.onednn_linear_available()
        x, w = torch.randn(4, 6), torch.randn(3, 6)
        with torch.no_grad():
            torch.testing.assert_close(kernels.linear(x, w), x @ w.t())  # no error: torch's own product
    finally:
        monkeypatch.undo()
        kernels.onednn_linear_available.cache_clear()
