"""The top-down hierarchical VAE: its groups feed the shared objectives, and the commands serve it as they serve a
flat VAE. (How good it gets with time is a benchmark's question, not a unit test's.)"""

import pytest
import torch

from steps import adam_steps
from vaekit.cli import main
from vaekit.models import HVAE, ModelConfig, build_model
from vaekit.objectives import elbo, iwae_bound


def small(groups=(2, 1), seed=0) -> HVAE:
    torch.manual_seed(seed)
    return build_model(ModelConfig(model="hvae", width=16, latent_dim=2, groups=list(groups)))


def digits(n: int = 16) -> torch.Tensor:
    from vaekit.data import load_dataset

    return load_dataset("mnist").train.images[:n].bernoulli(generator=torch.Generator().manual_seed(1))


def test_the_groups_are_the_ones_configured_top_first():
    model = small((2, 1))
    groups, px = model.latent_groups(digits(4))
    assert [g.z.shape[-1] for g in groups] == [2 * 7 * 7, 2 * 7 * 7, 2 * 14 * 14]
    assert px.log_prob(digits(4)).shape == (4,)
    assert model.latent_dim == 2 * 7 * 7 and model.posterior(digits(4)).mean.shape == (4, 98)
    many, px = model.latent_groups(digits(4), samples=3)
    assert many[0].z.shape == (3, 4, 98) and px.log_prob(digits(4)).shape == (3, 4)


def test_a_training_step_lowers_the_loss():
    losses = adam_steps(small(), digits(32), steps=30, lr=2e-3, seed=0)
    assert losses[-1] < 0.7 * losses[0]


def _trained() -> HVAE:
    model = small()
    adam_steps(model, digits(32), steps=20, lr=2e-3)  # a little training, so that q has moved off the prior
    return model.eval()


def test_each_groups_analytic_and_monte_carlo_kl_agree_and_the_elbo_is_the_one_sample_bound():
    model, x = _trained(), digits(8)
    torch.manual_seed(0)
    with torch.no_grad():
        analytic = [elbo(model, x, kl="analytic") for _ in range(400)]
        mc = [elbo(model, x, kl="mc") for _ in range(400)]
        one = torch.stack([iwae_bound(model, x, k=1) for _ in range(400)])

    def agree(a: torch.Tensor, b: torch.Tensor) -> bool:
        se = (a.var(0) / len(a) + b.var(0) / len(b)).sqrt()
        return bool(((a.mean(0) - b.mean(0)).abs() < 4 * se + 1e-6).all())

    assert len(analytic[0].kl_groups) == 3 and float(analytic[0].kl.mean()) > 0
    for group in range(3):
        assert agree(torch.stack([t.kl_groups[group] for t in analytic]), torch.stack([t.kl_groups[group] for t in mc]))
    assert agree(torch.stack([t.elbo for t in analytic]), one)  # the ELBO is the k=1 bound, in expectation
    with torch.no_grad():
        assert float(iwae_bound(model, x, k=200, chunk_size=50).mean()) > float(one.mean())


def test_the_commands_serve_a_hierarchical_run(tmp_path, capsys):
    run = tmp_path / "hvae"
    assert main(["train", "--model", "hvae", "--width", "16", "--latent-dim", "2", "--groups", "1,1", "--train-size",
                 "256", "--eval-size", "64", "--epochs", "1", "--batch-size", "64", "--run-dir", str(run),
                 "--no-tensorboard"]) == 0
    metrics = (run / "metrics.jsonl").read_text()
    assert '"valid_kl_group0"' in metrics and '"valid_kl_group1"' in metrics  # each group's KL is reported
    assert main(["evaluate", str(run), "--k", "20", "--limit", "20", "--samples", "100"]) == 0
    assert "nll:" in capsys.readouterr().out
    for command in ("sample", "reconstruct", "interpolate", "manifold", "latent"):
        assert main([command, str(run)]) == 0
        assert capsys.readouterr().out.strip().endswith(".png")
    pytest.importorskip("starlette", reason="the web extra (starlette) is not installed")
    from starlette.testclient import TestClient

    from vaekit.serve import open_runs
    from vaekit.serve.app import create_app

    views, poems = open_runs([run])
    client = TestClient(create_app(views, poems, port=8000), base_url="http://127.0.0.1:8000")
    described = client.get("/api/runs").json()["runs"][0]
    assert described["latent_dim"] == 2 * 7 * 7 and len(described["codes"]) == 1000  # the top group on the pad
    for path, body in (("/api/decode", {"run": "hvae", "point": [1, -1]}), ("/api/sample", {"run": "hvae", "n": 4}),
                       ("/api/interpolate", {"run": "hvae", "source": "test"}),
                       ("/api/encode", {"run": "hvae", "pixels": [0.0] * 784})):
        response = client.post(path, json=body)
        assert response.status_code == 200, (path, response.text)

