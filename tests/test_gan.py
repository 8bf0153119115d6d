import json

import pytest
import torch
from PIL import Image

from vaekit.cli import main
from vaekit.config import TrainConfig
from vaekit.models import GAN, ModelConfig, NoEncoderError
from vaekit.models.trainable import StepContext
from vaekit.train import Trainer, TrainingDiverged

SMALL = ["--train-size", "512", "--eval-size", "256", "--epochs", "2", "--batch-size", "64", "--latent-dim", "8",
         "--width", "16"]


def test_gan_trains_from_the_command_line_and_is_scored_like_the_vaes(tmp_path, capsys):
    run = tmp_path / "gan"
    assert main(["train", "--model", "gan", "--run-dir", str(run), *SMALL]) == 0
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and {"valid_discriminator_accuracy", "valid_sample_diversity"} <= set(rows[-1])
    saved = json.loads((run / "config.json").read_text())
    assert saved["data"]["binarization"] == "none" and saved["optim"]["lr"] == 2e-4
    with Image.open(run / "figures" / "samples.png") as img:
        assert img.size == (484, 484 + 26)  # the grid and its title band
    capsys.readouterr()
    assert main(["evaluate", str(run), "--samples", "500"]) == 0
    out = capsys.readouterr().out
    assert "frechet distance" in out and "no ELBO, NLL" in out and "nll:" not in out
    result = json.loads((run / "eval.json").read_text())
    assert result["sample_quality"]["frechet_distance"] > 0 and "nll" not in result
    for command in ("sample", "interpolate", "manifold"):
        assert main([command, str(run)]) == 0
    for command in ("reconstruct", "latent"):
        assert main([command, str(run)]) == 2
        assert "a GAN has no encoder" in capsys.readouterr().err


def test_conditional_gan_draws_a_label_and_reports_conditional_accuracy(tmp_path, capsys):
    run = tmp_path / "cgan"
    assert main(["train", "--model", "gan", "--conditional", "--run-dir", str(run), *SMALL]) == 0
    assert main(["sample", str(run), "--label", "3", "-n", "4"]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(run), "--samples", "200"]) == 0
    assert "conditional accuracy" in capsys.readouterr().out
    assert 0 <= json.loads((run / "eval.json").read_text())["sample_quality"]["conditional_accuracy"] <= 1


def test_gan_refuses_binarized_training_data(tmp_path, capsys):
    assert main(["train", "--model", "gan", "--binarization", "dynamic", "--run-dir", str(tmp_path / "g")]) == 2
    assert "use --binarization none" in capsys.readouterr().err


def test_gan_has_no_likelihood():
    gan = GAN(ModelConfig(model="gan", latent_dim=4))
    with pytest.raises(NoEncoderError, match="no encoder"):
        gan.posterior(torch.rand(2, 1, 28, 28))
    with pytest.raises(NoEncoderError, match="no likelihood"):
        gan.likelihood(torch.randn(2, 4))
    assert gan.sample(3).shape == (3, 1, 28, 28)


def test_two_optimizers_alternate_and_each_moves_only_its_network():
    gan = GAN(ModelConfig(model="gan", latent_dim=4, width=8))
    opts = gan.configure_optimizers(1e-3, 0.0)
    g_before = [p.clone() for p in gan.generator.parameters()]
    d_before = [p.clone() for p in gan.discriminator.parameters()]
    metrics = gan.training_step(torch.rand(16, 1, 28, 28), None, StepContext.standalone(opts)).parts
    assert {"loss_d", "loss_g"} <= set(metrics)
    assert all(not torch.equal(a, b) for a, b in zip(g_before, gan.generator.parameters(), strict=True))
    assert any(not torch.equal(a, b) for a, b in zip(d_before, gan.discriminator.parameters(), strict=True))


def test_a_bf16_step_runs_both_networks_in_bf16_and_their_losses_in_fp32():
    """`--precision bf16` reaches the GAN's own step too, so the family compares at one precision."""
    for amp in (False, True):
        torch.manual_seed(0)
        gan = GAN(ModelConfig(model="gan", latent_dim=4, width=8))
        opts = gan.configure_optimizers(1e-3, 0.0)
        seen: list[torch.dtype] = []
        for layer in gan.modules():
            if isinstance(layer, torch.nn.Conv2d | torch.nn.ConvTranspose2d | torch.nn.Linear):
                layer.register_forward_hook(lambda _m, _i, out, into=seen: into.append(out.dtype))
        torch.manual_seed(1)
        metrics = gan.training_step(torch.rand(16, 1, 28, 28), None, StepContext.standalone(opts, amp=amp)).parts
        assert set(seen) == {torch.bfloat16 if amp else torch.float32}
        assert all(p.dtype == torch.float32 for p in gan.parameters())
        if not amp:
            exact = metrics
    assert metrics["loss_d"] == pytest.approx(exact["loss_d"], rel=0.02)  # the same step, rounded
    assert metrics["loss_g"] == pytest.approx(exact["loss_g"], rel=0.02)


def test_mode_collapse_is_detected_and_the_checkpoint_kept(tmp_path):
    cfg = TrainConfig.from_flat(run_dir=str(tmp_path / "g"), model="gan", latent_dim=4, width=8, train_size=256,
                      eval_size=128, batch_size=64, epochs=1, device="cpu", tensorboard=False)
    trainer = Trainer(cfg, log=lambda _m: None)
    trainer.fit()
    before = (tmp_path / "g" / "model.safetensors").read_bytes()
    with torch.no_grad():  # a generator that ignores z: every sample identical
        first = trainer.model.generator.fc[0]
        first.weight.zero_()
    trainer.config.optim.epochs = 2
    with pytest.raises(TrainingDiverged, match=r"mode collapse at epoch 2.*last good checkpoint \(.*epoch-0001\) is intact"):
        trainer.fit()
    assert (tmp_path / "g" / "model.safetensors").read_bytes() == before
