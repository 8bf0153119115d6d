import json

import numpy as np
import pytest
import scipy.linalg
import torch

from ppca import PPCA
from vaekit.classifier import classifier_path, frechet_distance, load_classifier
from vaekit.evaluate import estimate_nll, latent_statistics
from vaekit.models import ModelConfig, build_model
from vaekit.objectives import elbo


def test_nll_matches_the_closed_form_of_a_linear_gaussian_model():
    model = PPCA(n=6, d=2, noise=0.4, seed=3)
    model.posterior_kind = "poor"
    x = model.sample_x(200, seed=5)
    labels = torch.zeros(200, dtype=torch.long)
    result = estimate_nll(model, x, labels, k=5000, batch_size=50, chunk_size=1000)
    exact = -model.log_marginal(x).mean().item()
    assert result.nll == pytest.approx(exact, abs=0.05)
    assert result.images == 200 and result.k == 5000
    exact_se = model.log_marginal(x).std().item() / np.sqrt(200)
    assert result.standard_error == pytest.approx(exact_se, rel=0.05)


def test_nll_is_at_most_the_negative_elbo():
    model = PPCA(n=6, d=2, noise=0.4, seed=3)
    model.posterior_kind = "poor"
    x = model.sample_x(100, seed=6)
    neg_elbo = -torch.stack([elbo(model, x).elbo for _ in range(200)]).mean().item()
    nll = estimate_nll(model, x, torch.zeros(100, dtype=torch.long), k=500).nll
    assert nll < neg_elbo - 0.5  # a poor posterior leaves a real gap that importance sampling closes


def test_nll_reports_bits_per_dim_for_continuous_data():
    model = PPCA(n=6, d=2, noise=0.4, seed=3)  # a density: scored on dequantized levels, plus log 256 a pixel
    x = (model.sample_x(10).sigmoid() * 255).round() / 255
    result = estimate_nll(model, x, torch.zeros(10, dtype=torch.long), k=10, pixel_levels=256, protocol="p")
    assert result.dequantized and result.bits_per_dim == pytest.approx(result.nll / (6 * np.log(2)))
    plain = estimate_nll(model, x, torch.zeros(10, dtype=torch.long), k=10, protocol="p")
    assert plain.bits_per_dim is None and not plain.dequantized
    assert abs(result.nll - 6 * np.log(256) - plain.nll) < 5  # the offset, up to the dequantization noise
    assert "bits/dim" in result.line() and "k=10, 10 images, p" in result.line()


def test_autoencoder_has_no_nll():
    model = build_model(ModelConfig(model="ae", arch="mlp", hidden=[8]))
    with pytest.raises(ValueError, match="no likelihood"):
        estimate_nll(model, torch.rand(2, 1, 28, 28), torch.zeros(2, dtype=torch.long), k=2)


def test_frechet_distance_matches_scipy():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(500, 8, generator=g, dtype=torch.float64)
    b = torch.randn(500, 8, generator=g, dtype=torch.float64) @ torch.randn(8, 8, generator=g, dtype=torch.float64) + 1
    mu1, mu2, c1, c2 = a.mean(0), b.mean(0), torch.cov(a.T), torch.cov(b.T)
    covmean = scipy.linalg.sqrtm(c1.numpy() @ c2.numpy()).real
    expected = ((mu1 - mu2) ** 2).sum().item() + np.trace(c1.numpy() + c2.numpy() - 2 * covmean)
    assert frechet_distance(mu1, c1, mu2, c2) == pytest.approx(expected, rel=1e-6)
    assert frechet_distance(mu1, c1, mu1, c1) == pytest.approx(0.0, abs=1e-6)


def test_active_units_follow_burdas_definition():
    model = build_model(ModelConfig(arch="mlp", hidden=[8], latent_dim=4))
    with torch.no_grad():  # make the posterior mean depend on the input in unit 0 only
        last = model.encoder.net[-1]
        last.weight.zero_()
        last.bias.zero_()
        last.weight[0, :] = 1.0
    x = torch.rand(300, 1, 28, 28)
    stats = latent_statistics(model, x, torch.zeros(300, dtype=torch.long))
    assert stats["active_units"] == 1 and stats["activity"][0] > 0.01
    assert len(stats["kl_per_dim"]) == 4 and stats["kl_per_dim"][0] > stats["kl_per_dim"][1]


@pytest.mark.parametrize("dataset", ["mnist", "fashion-mnist"])
def test_shipped_classifiers_are_small_and_accurate(dataset):
    path = classifier_path(dataset)
    assert path.is_file() and path.stat().st_size < 2_000_000 / 2  # both together under 2 MB
    if dataset == "fashion-mnist":
        from vaekit.data.fashion import DEBIAN_FASHION_DIR

        if not DEBIAN_FASHION_DIR.is_dir():
            pytest.skip("Fashion-MNIST data absent (dataset-fashion-mnist not installed)")
    from vaekit.data import load_dataset

    data = load_dataset(dataset)
    clf = load_classifier(dataset)
    with torch.no_grad():
        acc = (clf(data.test.images[:2000]).argmax(-1) == data.test.labels[:2000]).float().mean().item()
    assert acc > (0.97 if dataset == "mnist" else 0.85)


def test_memory_sizes_parse():
    from vaekit.memory import parse_memory

    assert parse_memory("512MB") == 512 * 2**20 and parse_memory("2g") == 2 * 2**30 and parse_memory("1.5GiB") == 3 * 2**29
    for bad in ("", "lots", "-1GB", "0MB"):
        with pytest.raises(ValueError, match="512MB or 2GB"):
            parse_memory(bad)


@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_passes_follow_the_memory_budget_not_fixed_sizes(arch):
    from vaekit.memory import bytes_per_sample, plan_passes

    model = build_model(ModelConfig(arch=arch, latent_dim=8, image_shape=(1, 28, 28), hidden=[64])).eval()
    x = torch.rand(50, 1, 28, 28).bernoulli()
    per_sample = bytes_per_sample(model, x)
    assert per_sample > 4 * 784 * 4  # at least the likelihood's own temporaries
    for budget in (2**20, 64 * 2**20, 2**30):
        plan = plan_passes(model, x, None, k=5000, budget=budget)
        assert plan.samples_at_once * per_sample <= budget or plan.samples_at_once == 1
        assert plan.chunk_size <= 5000 and plan.batch_size <= 50
    assert plan_passes(model, x, None, k=100, budget=2**30, batch_size=7, chunk_size=3).samples_at_once == 21


def test_the_estimate_does_not_depend_on_the_budget():
    model = build_model(ModelConfig(arch="mlp", latent_dim=4, image_shape=(1, 28, 28), hidden=[32])).eval()
    x = torch.rand(20, 1, 28, 28).bernoulli()
    y = torch.zeros(20, dtype=torch.long)
    small = estimate_nll(model, x, y, k=400, memory=2**20)  # chunks of a few samples, one image a batch
    large = estimate_nll(model, x, y, k=400, memory=2**30)  # several images' samples in one pass
    assert small.k == large.k == 400 and small.images == large.images == 20
    assert abs(small.nll - large.nll) < 3 * large.standard_error


def test_evaluate_says_how_long_and_how_much_at_once(tmp_path, capsys):
    from vaekit.cli import main

    run = tmp_path / "r"
    assert main(["train", "--run-dir", str(run), "--arch", "mlp", "--hidden", "32", "--latent-dim", "2",
                 "--train-size", "128", "--eval-size", "32", "--epochs", "1", "--no-tensorboard"]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(run), "--k", "50", "--limit", "20", "--samples", "0", "--memory", "1MB"]) == 0
    err = capsys.readouterr().err
    assert "decoder passes" in err and "budget 1 MB" in err and "samples/s" in err
    assert main(["evaluate", str(run), "--k", "50", "--limit", "20", "--samples", "0", "--precision", "bf16"]) == 0
    assert "decoder in bf16" in capsys.readouterr().out
    assert json.loads((run / "eval.json").read_text())["nll"]["precision"] == "bf16"


@pytest.mark.parametrize("arch", ["mlp", "conv", "resnet"])
def test_fast_evaluation_changes_only_rounding_and_restores_the_model(monkeypatch, arch):
    import contextlib

    import vaekit.evaluate as ev

    model = build_model(ModelConfig(arch=arch, latent_dim=4, width=8)).eval()
    relus = [m for m in model.modules() if isinstance(m, torch.nn.ReLU)]
    x, y = torch.rand(3, 1, 28, 28).bernoulli(), torch.zeros(3, dtype=torch.long)
    torch.manual_seed(0)
    fast = estimate_nll(model, x, y, k=50)
    assert all(p.is_contiguous() for p in model.parameters())  # the caller's model is left as it was
    # the layout changes happen outside the inference-mode loop: no parameter became an inference tensor, it trains
    assert not any(p.is_inference() for p in model.parameters())
    elbo(model.train(), x).loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    model.eval().zero_grad(set_to_none=True)
    assert not any(m.inplace or "forward" in vars(m) for m in relus)
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert linears and not any("forward" in vars(m) for m in linears)  # their class's forward again
    with ev._fast_layout(model, torch.device("cpu")):  # inside, they run by oneDNN where this torch has it
        assert all("forward" in vars(m) for m in linears) == ev.kernels.onednn_linear_available()
    monkeypatch.setattr(ev, "_fast_layout", lambda *_: contextlib.nullcontext())
    torch.manual_seed(0)
    plain = estimate_nll(model, x, y, k=50)
    # a residual block's first ReLU sees the block's input: were it in place, the skip path would change the number
    assert fast.nll == pytest.approx(plain.nll, rel=1e-5)
    in_place = ev._relus_on_fresh_tensors(model)
    assert 0 < len(in_place) < len(relus) if arch == "resnet" else len(in_place) == len(relus)


def test_a_small_k_scores_several_images_a_pass_within_the_pass_cap():
    from vaekit.memory import CPU_PASS_CAP

    model = build_model(ModelConfig(arch="mlp", latent_dim=4, image_shape=(1, 28, 28), hidden=[32])).eval()
    x = torch.rand(300, 1, 28, 28).bernoulli()
    y = torch.zeros(300, dtype=torch.long)
    plans = []
    estimate_nll(model, x, y, k=10, on_plan=plans.append)  # measured on one image, planned for all 300
    plan = plans[0]
    assert plan.chunk_size == 10 and plan.batch_size > 1
    assert plan.samples_at_once * plan.bytes_per_sample <= CPU_PASS_CAP
    assert (plan.batch_size == 300 or (plan.samples_at_once + plan.chunk_size) * plan.bytes_per_sample > CPU_PASS_CAP)
    plans.clear()
    estimate_nll(model, x[:7], y[:7], k=10, on_plan=plans.append)
    assert plans[0].batch_size == 7  # never more images a pass than there are


def test_no_single_cpu_activation_outgrows_the_cap():
    from vaekit.memory import CPU_TENSOR_CAP, largest_activation, plan_passes

    model = build_model(ModelConfig(arch="conv", latent_dim=4)).eval()
    x = torch.rand(50, 1, 28, 28).bernoulli()
    largest = largest_activation(model, x)
    assert largest == 32 * 28 * 28 * 4  # the last transposed convolution's output, one sample
    plan = plan_passes(model, x, None, k=5000, budget=2**30)
    assert plan.samples_at_once * largest <= CPU_TENSOR_CAP < (plan.samples_at_once + 1) * largest


@pytest.mark.parametrize("arch", ["mlp", "conv", "resnet"])
def test_a_bf16_decoder_moves_the_estimate_by_rounding_only(arch):
    """Same model and z: the decoder's products run in bf16, the log-density it hands on is fp32, and log p(x)
    moves by far less than the 0.05-nat bias allowed."""
    import vaekit.evaluate as ev

    torch.manual_seed(1)
    model = build_model(ModelConfig(arch=arch, latent_dim=4, width=8)).eval()
    x, y = torch.rand(6, 1, 28, 28).bernoulli(), torch.zeros(6, dtype=torch.long)
    seen = []
    first = next(m for m in model.decoder.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)))
    first.register_forward_hook(lambda _m, _i, out: seen.append(out.dtype))
    got = {}
    for precision in ("fp32", "bf16"):
        torch.manual_seed(0)
        got[precision] = estimate_nll(model, x, y, k=200, batch_size=2, chunk_size=50, precision=precision)
    assert seen[-1] == torch.bfloat16 and seen[0] == torch.float32  # the bf16 run did multiply in bf16
    assert got["bf16"].precision == "bf16" and "decoder in bf16" in got["bf16"].line()
    assert abs(got["bf16"].nll - got["fp32"].nll) < 0.02
    with ev._decoder_precision(model, torch.device("cpu"), "bf16"):
        z = model.posterior(x).sample((3,))
        assert z.dtype == torch.float32  # the encoder is left in fp32
        assert model.likelihood(z).log_prob(x).dtype == torch.float32  # as is what the logsumexp sums
    assert "likelihood" not in vars(model)  # the caller's model is left as it was
    assert not any("forward" in vars(m) for m in model.modules() if isinstance(m, torch.nn.ReLU))
    with pytest.raises(ValueError, match="precision must be one of"):
        estimate_nll(model, x, y, k=10, precision="fp16")
    assert ev.PRECISIONS == ("fp32", "bf16")


def test_the_bf16_relu_is_torchs_relu_bit_for_bit():
    from vaekit.evaluate import _relu_in_place

    values = torch.cat([torch.randn(10_000) * 10.0 ** torch.randint(-40, 38, (10_000,)),
                        torch.tensor([0.0, -0.0, float("inf"), float("-inf"), 1e-40, -1e-40])]).to(torch.bfloat16)
    expected = torch.relu(values)
    got = _relu_in_place(values.clone())
    assert torch.equal(got, expected)  # as numbers: torch keeps a -0.0, the int16 clamp writes +0.0
    assert torch.equal(got.view(torch.int16)[expected != 0], expected.view(torch.int16)[expected != 0])
    fp32 = torch.randn(100)
    assert torch.equal(_relu_in_place(fp32.clone()), torch.relu(fp32))


def test_onednn_linear_steps_aside_under_autocast():
    from vaekit import kernels

    x, w = torch.randn(4, 8), torch.randn(3, 8)
    with torch.no_grad():
        assert kernels.usable(x, w) == kernels.onednn_linear_available()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert not kernels.usable(x, w)
            assert kernels.linear(x, w).dtype == torch.bfloat16  # torch's linear, autocast to bf16
