"""The top-down hierarchical VAE: its groups feed the shared objectives, and the commands serve it as they serve a
flat VAE. (How good it gets with time is a benchmark's question, not a unit test's.)"""

import pytest
import torch

from steps import adam_steps
from vaekit.cli import main
from vaekit.models import HVAE, ModelConfig, build_model
from vaekit.models.trainable import EpochTally, StepContext, StepResult
from vaekit.objectives import balanced_kl, elbo, iwae_bound


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


def test_a_step_reports_its_gradient_norm_before_clipping():
    model = small()
    ctx = StepContext.standalone([torch.optim.SGD(model.parameters(), lr=0.0)], forward=model, grad_clip=1e-3)
    result = model.training_step(digits(8), None, ctx)
    clipped = torch.sqrt(sum((p.grad.float() ** 2).sum() for p in model.parameters() if p.grad is not None))
    assert result.grad_norm is not None and result.grad_norm > 1.0  # this loss's gradient, nats over an image
    assert float(clipped) == pytest.approx(1e-3, rel=1e-3)  # what the optimizer saw was clipped to the threshold


def test_an_epoch_logs_the_gradient_norm_a_skip_threshold_must_clear():
    tally = EpochTally()
    for norm, skipped in ((3.0, False), (1.0, False), (50.0, True)):
        tally.add(StepResult(loss=2.0, bound=-4.0, skipped=skipped, grad_norm=norm), images=2)
    metrics = tally.metrics(seconds=2.0, world_size=1, grad_skip=10.0)
    assert metrics["grad_norm_median"] == 3.0 and metrics["grad_norm_max"] == 50.0 and metrics["skipped_steps"] == 1
    assert metrics["train_loss"] == 2.0 and metrics["train_bound"] == -2.0 and metrics["images_per_s"] == 3.0
    assert "skipped_steps" not in EpochTally().metrics(1.0, 1, grad_skip=0.0)


def test_the_commands_serve_a_hierarchical_run(tmp_path, capsys):
    run = tmp_path / "hvae"
    assert main(["train", "--model", "hvae", "--width", "16", "--latent-dim", "2", "--groups", "1,1", "--train-size",
                 "256", "--eval-size", "64", "--epochs", "1", "--batch-size", "64", "--run-dir", str(run),
                 "--no-tensorboard", "--grad-skip", "1e6"]) == 0
    metrics = (run / "metrics.jsonl").read_text()
    assert '"valid_kl_group0"' in metrics and '"valid_kl_group1"' in metrics  # each group's KL is reported
    assert '"skipped_steps": 0' in metrics  # an epoch says how many steps the outlier guard skipped
    assert "skipped 0 steps (gradient norm median" in capsys.readouterr().out  # and the norms the guard must clear
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
    lower = client.post("/api/sample", json={"run": "hvae", "n": 4, "lower_temperature": 1.0, "seed": 3}).json()
    again = client.post("/api/sample", json={"run": "hvae", "n": 4, "lower_temperature": 1.0, "seed": 3}).json()
    at_mean = client.post("/api/sample", json={"run": "hvae", "n": 4, "seed": 3}).json()
    assert lower == again and lower != at_mean  # the lower groups drawn, from the request's seed
    assert described["groups"] == 2
    response = client.post("/api/sample", json={"run": "hvae", "lower_temperature": 9})
    assert response.status_code == 400 and "lower_temperature must be between 0 and 3" in response.json()["error"]
    assert main(["sample", str(run), "--temperature", "1,0.5", "-n", "4"]) == 0
    assert capsys.readouterr().out.strip().endswith("samples.png")
    assert main(["sample", str(run), "--temperature", "1,0.5,0.5"]) == 2
    assert "one for each of this run's 2 latent groups" in capsys.readouterr().err


def test_each_group_samples_at_its_own_temperature():
    model = _trained()
    with torch.no_grad():
        cold = model.sample(6, temperature=0.0)
        assert torch.equal(cold, model.sample(6, temperature=[0.0, 0.0, 0.0]))  # one for all = one a group
        assert torch.equal(cold[0].expand_as(cold), cold)  # every group at its prior mean: one image
        top_only = model.sample(6, temperature=[1.0, 0.0, 0.0], generator=torch.Generator().manual_seed(0))
        assert not torch.equal(top_only[0].expand_as(top_only), top_only)
        top = model.prior().mean.expand(2, -1)
        assert torch.equal(model.decode(top), model.decode(top, lower_temperature=0.0))
        drawn = [model.decode(top, lower_temperature=1.0, generator=torch.Generator().manual_seed(s)) for s in (1, 1, 2)]
        assert torch.equal(drawn[0], drawn[1]) and not torch.equal(drawn[0], drawn[2])
        assert not torch.equal(drawn[0], model.decode(top))
    with pytest.raises(ValueError, match="one for each of the 3 groups"):
        model.sample(2, temperature=[1.0, 0.5])


def test_active_units_are_counted_for_every_group():
    from vaekit.evaluate import latent_statistics

    x = digits(64)
    fresh = latent_statistics(small(), x, torch.zeros(64, dtype=torch.long))  # q starts as p: nothing moves with x
    assert fresh["active_units_per_group"] == [0, 0, 0] and fresh["group_dims"] == [98, 98, 392]
    model = _trained()
    trained = latent_statistics(model, x, torch.zeros(64, dtype=torch.long))
    assert trained["active_units_per_group"][0] > 0 and trained["active_units"] > 0
    with torch.no_grad():  # group 1 collapsed onto its prior: its prior still moves with x, through group 0
        model.blocks[1].posterior.weight.zero_()
        model.blocks[1].posterior.bias.zero_()
    collapsed = latent_statistics(model, x, torch.zeros(64, dtype=torch.long))
    assert collapsed["active_units_per_group"][1] == 0 and collapsed["active_units_per_group"][0] > 0


def test_the_reconstruction_error_decodes_every_group_at_its_posterior_mean_not_the_top_one_alone():
    from vaekit.evaluate import reconstruction_error

    model, x = _trained(), digits(8)  # trained a little, so that the lower groups' posteriors leave their priors
    with torch.no_grad():
        got = reconstruction_error(model, x, torch.zeros(len(x), dtype=torch.long))["neg_log_likelihood_at_mean"]
        _, params = model._top_down(model._bottom_up(x), len(x), use_means=True)
        every = float(-model.head(params).log_prob(x).sum()) / len(x)
        top_only = float(-model.likelihood(model.posterior(x).mean).log_prob(x).sum()) / len(x)
    assert got == pytest.approx(every, rel=1e-5) and abs(top_only - every) > 1e-3


def test_kl_balancing_charges_a_group_by_what_it_carries_for_its_size():
    kls = [torch.tensor([4.0, 6.0], requires_grad=True), torch.tensor([0.5, 0.5], requires_grad=True)]
    charge, weights = balanced_kl(kls, dims=[10, 40])
    share = torch.tensor([5.01 / 10, 0.51 / 40])  # batch-mean KL (+ 0.01 nats) a latent variable
    assert torch.allclose(weights, share / share.mean())
    assert float(weights.mean()) == pytest.approx(1.0) and float(weights[1]) < 0.1 * float(weights[0])
    charge.backward()  # the weights are held constant: each group's pull is its weight, spread over its batch
    assert torch.allclose(kls[0].grad, weights[0] / 2) and torch.allclose(kls[1].grad, weights[1] / 2)


def test_kl_balancing_changes_the_warm_up_loss_only_never_the_reported_bound():
    model, x = _trained(), digits(8)
    model.config.kl_balance = True

    def terms(beta: float, balance: bool):
        model.config.kl_balance = balance
        torch.manual_seed(3)
        return model(x, beta=beta)

    warm, plain = terms(0.3, True), terms(0.3, False)
    assert torch.equal(warm.elbo, plain.elbo) and torch.equal(warm.kl, plain.kl)
    groups = torch.stack([k.mean() for k in plain.kl_groups]).detach()
    weights = balanced_kl(list(plain.kl_groups), [98, 98, 392])[1]
    charged = float((warm.loss.detach() + plain.log_likelihood.mean().detach()) / 0.3)  # the KL the loss charges
    assert charged == pytest.approx(float((weights * groups).sum()), rel=1e-4)
    assert float((weights - 1).abs().max()) > 0.2  # the groups carry unequal KL a variable: not the plain sum
    assert float(terms(1.0, True).loss.detach()) == pytest.approx(float(terms(1.0, False).loss.detach()), rel=1e-6)


def test_kl_balance_is_refused_for_a_model_with_one_group(tmp_path, capsys):
    assert main(["train", "--model", "vae", "--kl-balance", "--run-dir", str(tmp_path / "run")]) != 0
    err = capsys.readouterr().err
    assert "--kl-balance" in err and "Traceback" not in err and not (tmp_path / "run").exists()


@pytest.mark.parametrize("groups, shape, sides", [((1, 1, 1), (1, 32, 32), [4, 8, 16]), ((2,), (1, 28, 28), [14, 14]),
                                                   ((1, 0, 2), (3, 16, 16), [2, 8, 8])])
def test_the_groups_stand_at_as_many_resolutions_as_counts_given_coarsest_first(groups, shape, sides):
    torch.manual_seed(0)
    model = build_model(ModelConfig(model="hvae", width=8, latent_dim=2, groups=list(groups), image_shape=shape,
                                    likelihood="bernoulli"))
    x = torch.rand(3, *shape, generator=torch.Generator().manual_seed(0)).round()
    drawn, px = model.latent_groups(x)
    assert [g.z.shape[-1] for g in drawn] == [2 * side * side for side in sides]
    assert px.log_prob(x).shape == (3,) and model.sample(2).shape == (2, *shape)
    assert bool(torch.isfinite(iwae_bound(model, x, k=3)).all())
    assert len(model.down) == len(model.up) == len(groups)


def test_the_default_two_resolutions_keep_the_parameter_names_saved_runs_hold():
    names = {name.split(".")[0] + "." + name.split(".")[1] for name, _ in small((2, 2)).named_parameters()
             if name.startswith(("down.", "up."))}
    assert names == {"down.0", "down.1", "up.0", "up.1"}


def test_more_resolutions_than_the_image_side_halves_into_is_refused_in_a_sentence(tmp_path, capsys):
    assert main(["train", "--model", "hvae", "--groups", "1,2,2", "--run-dir", str(tmp_path / "run")]) != 0
    err = capsys.readouterr().err
    assert "divide by 8" in err and "Traceback" not in err and not (tmp_path / "run").exists()
