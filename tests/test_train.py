"""End-to-end training through the command line and the Trainer: every model, resume after a kill, DDP, NaN."""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

import vaekit
from vaekit.cli import main
from vaekit.config import ConfigError, TrainConfig
from vaekit.train import Trainer, TrainingDiverged

SMALL = ["--train-size", "256", "--eval-size", "128", "--epochs", "1", "--batch-size", "64", "--latent-dim", "4"]


def run_cli(*args: str) -> int:
    return main([str(a) for a in args])


@pytest.mark.parametrize(
    ("model", "arch", "extra"),
    [
        ("ae", "mlp", []),
        ("vae", "conv", ["--kl", "mc", "--beta", "2", "--kl-warmup", "0.5"]),
        ("vae", "resnet", ["--width", "8", "--binarization", "none", "--likelihood", "gaussian", "--learn-scale"]),
        ("iwae", "mlp", ["--k", "4", "--hidden", "64,32"]),
        ("cvae", "conv", ["--conditioning", "input"]),
        ("cvae", "mlp", ["--conditioning", "prior", "--hidden", "64"]),
    ],
)
def test_every_model_trains_from_the_command_line(tmp_path, capsys, model, arch, extra):
    run = tmp_path / "run"
    assert run_cli("train", "--model", model, "--arch", arch, "--run-dir", run, *SMALL, *extra) == 0
    for name in ("config.json", "model.safetensors", "metrics.jsonl", "figures/samples.png", "figures/reconstructions.png"):
        assert (run / name).is_file(), name
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(metrics) == 1 and metrics[0]["epoch"] == 1
    key = "valid_log_likelihood" if model == "ae" else "valid_elbo"
    assert metrics[0][key] < 0 or extra[:2] == ["--width", "8"]  # gaussian log-densities may be positive
    loaded = vaekit.load(run)
    assert not loaded.training and loaded.config.model == model
    from vaekit.plots import TITLE_BAND

    with Image.open(run / "figures/samples.png") as img:  # 8x8 grid of 28px tiles, 2px border, x2, a title band
        assert img.size == ((8 * 30 + 2) * 2, (8 * 30 + 2) * 2 + TITLE_BAND)


def test_training_lowers_the_loss_and_writes_tensorboard(tmp_path):
    run = tmp_path / "run"
    cfg = TrainConfig.from_flat(run_dir=str(run), arch="mlp", hidden=[128], latent_dim=8, train_size=2048, eval_size=500,
                      epochs=3, batch_size=64, lr=2e-3, device="cpu")
    Trainer(cfg, log=lambda _m: None).fit()
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["valid_elbo"] > rows[0]["valid_elbo"] + 5
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]
    assert any((run / "tensorboard").iterdir())


@pytest.mark.parametrize(("amx", "avx512_bf16", "native"), [(True, False, True), (False, True, True),
                                                            (False, False, False)])
def test_a_cpu_with_amx_or_avx512_bf16_multiplies_bf16_natively(monkeypatch, amx, avx512_bf16, native):
    from vaekit import kernels

    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16, raising=False)
    assert kernels.native_bf16(torch.device("cpu")) is native
    assert kernels.native_bf16(torch.device("cpu"), tiles_only=True) is amx  # evaluation's suggestion: AMX alone


def test_training_precision_follows_the_hardware_unless_named(monkeypatch):
    from vaekit import kernels
    from vaekit.config import ConfigError
    from vaekit.train import training_precision

    cpu = torch.device("cpu")
    monkeypatch.setattr(kernels, "native_bf16", lambda _device: True)
    assert training_precision("auto", cpu)[0] == "bf16"
    assert training_precision("fp32", cpu)[0] == "fp32"
    monkeypatch.setattr(kernels, "native_bf16", lambda _device: False)
    assert training_precision("auto", cpu)[0] == "fp32"
    assert training_precision("bf16", cpu)[0] == "bf16"
    with pytest.raises(ConfigError, match="precision bf16 runs on a CPU or a CUDA GPU, not on mps"):
        training_precision("bf16", torch.device("mps"))
    with pytest.raises(ConfigError, match="precision must be one of auto, fp32, bf16"):
        TrainConfig.from_flat(precision="fp16")


def test_a_bf16_step_multiplies_in_bf16_and_keeps_fp32_weights_and_losses(tmp_path):
    """Same initialisation and batch in both precisions: the products run in the precision asked, the weights and
    every loss term stay fp32, bf16's loss is fp32's but for rounding, and its steps lower it; conv weights are
    channels-last on a CPU (oneDNN's faster layout)."""
    from vaekit.train import resume_config

    runs: dict[str, tuple[list[torch.dtype], list[torch.dtype], list[float]]] = {}
    for precision in ("fp32", "bf16"):
        cfg = TrainConfig.from_flat(run_dir=str(tmp_path / precision), arch="conv", latent_dim=4, train_size=256,
                                    eval_size=64, epochs=1, batch_size=64, lr=2e-3, device="cpu", seed=0,
                                    precision=precision, tensorboard=False)
        said: list[str] = []
        trainer = Trainer(cfg, log=said.append)
        assert f"precision: {precision} (as asked)" in said
        products: list[torch.dtype] = []
        terms: list[torch.dtype] = []
        for layer in trainer.model.modules():
            if isinstance(layer, torch.nn.Conv2d | torch.nn.ConvTranspose2d | torch.nn.Linear):
                layer.register_forward_hook(lambda _m, _i, out, seen=products: seen.append(out.dtype))
        trainer.model.register_forward_hook(lambda _m, _i, out, seen=terms: seen.extend(
            v.dtype for v in (out.log_likelihood, out.kl, out.elbo, out.loss)))
        x = trainer.train_images[:64].clone()
        losses = [trainer.train_step(x, None).loss for _ in range(6)]
        maps = [p for p in trainer.model.parameters() if p.ndim == 4]
        assert maps and all(p.is_contiguous(memory_format=torch.channels_last) for p in maps)
        assert all(p.dtype == torch.float32 for p in trainer.model.parameters())
        trainer.close()
        runs[precision] = (products, terms, losses)
    for precision, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        products, terms, losses = runs[precision]
        assert set(products) == {dtype}
        assert set(terms) == {torch.float32}
        assert losses[-1] < losses[0]
    assert abs(runs["bf16"][2][0] - runs["fp32"][2][0]) < 0.01 * runs["fp32"][2][0]
    assert resume_config(tmp_path / "bf16", {"precision": "fp32"}).run.precision == "fp32"  # like the device


def test_run_commands_write_images_of_the_right_size(tmp_path, capsys):
    run = tmp_path / "run"
    assert run_cli("train", "--model", "cvae", "--arch", "mlp", "--hidden", "64", "--run-dir", run, *SMALL) == 0
    capsys.readouterr()
    from vaekit.plots import FOOTER_BAND, LABEL_COLUMN, TITLE_BAND

    # each figure is its grid (30-px tiles at 2x) plus the documented caption bands
    cases = {
        ("sample", "-n", "9", "--label", "3"): (3 * 30 + 2, 3 * 30 + 2, 0, TITLE_BAND),
        ("reconstruct", "-n", "8"): (8 * 30 + 2, 2 * 30 + 2, LABEL_COLUMN, TITLE_BAND + FOOTER_BAND),
        ("interpolate", "--rows", "2", "--steps", "5"): (5 * 30 + 2, 2 * 30 + 2, 0, TITLE_BAND + 2 * FOOTER_BAND),
        ("manifold", "-n", "4"): (4 * 30 + 2, 4 * 30 + 2, 0, TITLE_BAND + 2 * FOOTER_BAND),
    }
    for args, (w, h, left, bands) in cases.items():
        assert run_cli(args[0], run, *args[1:]) == 0
        path = Path(capsys.readouterr().out.strip().splitlines()[-1])
        with Image.open(path) as img:
            assert img.size == (2 * w + left, 2 * h + bands), args
    assert run_cli("latent", run, "-n", "300") == 0
    path = Path(capsys.readouterr().out.strip())
    with Image.open(path) as img:
        assert img.size == (700, 600)
    assert run_cli("evaluate", run, "--k", "20", "--limit", "50") == 0
    out = capsys.readouterr().out
    assert "elbo:" in out and "nll:" in out and "k=20, 50 images" in out
    saved = json.loads((run / "eval.json").read_text())
    # k=20 importance samples give a tighter bound than the ELBO on the same images (up to Monte Carlo noise)
    assert saved["nll"]["k"] == 20 and 0 < saved["nll"]["nll"] <= -saved["elbo"] + 2


def test_config_file_and_flags(tmp_path, capsys):
    cfg = tmp_path / "vae.toml"
    cfg.write_text('model = "vae"\narch = "mlp"\nlatent-dim = 3\nhidden = [32]\nepochs = 1\ntrain_size = 128\n')
    run = tmp_path / "run"
    assert run_cli("train", "--config", cfg, "--run-dir", run, "--latent-dim", "5", "--eval-size", "64") == 0
    saved = json.loads((run / "config.json").read_text())
    assert saved["model"]["latent_dim"] == 5 and saved["model"]["hidden"] == [32] and saved["format"] == "vaekit-run/2"
    bad = tmp_path / "bad.toml"
    bad.write_text("latnet_dim = 3\n")
    assert run_cli("train", "--config", bad, "--run-dir", tmp_path / "r2") == 2
    assert "unknown setting 'latnet_dim'; did you mean 'latent_dim'?" in capsys.readouterr().err
    assert not (tmp_path / "r2").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "vqvae"], "model must be one of ae, vae, iwae, cvae, gan, hvae; got 'vqvae'"),
        (["--lr", "-1"], "lr must be a positive number"),
        (["--binarization", "otsu"], "binarization must be one of dynamic, static, none"),
        (["--dataset", "folder"], "--dataset folder needs --data-dir"),
    ],
)
def test_bad_values_get_one_sentence_and_exit_2(tmp_path, capsys, args, message):
    assert run_cli("train", "--run-dir", tmp_path / "r", *args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1


def test_existing_run_is_never_overwritten(tmp_path, capsys):
    run = tmp_path / "run"
    assert run_cli("train", "--arch", "mlp", "--hidden", "16", "--run-dir", run, *SMALL) == 0
    before = (run / "model.safetensors").read_bytes()
    assert run_cli("train", "--arch", "mlp", "--run-dir", run, *SMALL) == 2
    assert "already holds a run; pass --resume" in capsys.readouterr().err
    assert (run / "model.safetensors").read_bytes() == before


def test_checkpoint_from_elsewhere_is_refused(tmp_path, capsys):
    run = tmp_path / "run"
    assert run_cli("train", "--arch", "mlp", "--hidden", "16", "--run-dir", run, *SMALL) == 0
    other = tmp_path / "other"
    assert run_cli("train", "--arch", "conv", "--run-dir", other, *SMALL) == 0
    shutil.copy(other / "model.safetensors", run / "model.safetensors")
    assert run_cli("sample", run) == 2
    assert "weights do not match the model in config.json" in capsys.readouterr().err
    (run / "config.json").write_text(json.dumps({"hello": 1}))
    assert run_cli("sample", run) == 2
    assert "not a vaekit run config" in capsys.readouterr().err
    (run / "config.json").write_text("{not json")
    assert run_cli("sample", run) == 2
    assert "not valid JSON" in capsys.readouterr().err


def test_nan_stops_training_and_keeps_the_last_good_checkpoint(tmp_path):
    run = tmp_path / "run"
    cfg = TrainConfig.from_flat(run_dir=str(run), arch="mlp", hidden=[16], latent_dim=2, train_size=256, eval_size=64,
                      epochs=3, batch_size=64, device="cpu")
    trainer = Trainer(cfg, log=lambda _m: None)
    trainer.config.optim.epochs = 1
    trainer.fit()
    digest = hashlib.sha256((run / "model.safetensors").read_bytes()).hexdigest()
    with torch.no_grad():
        next(trainer.model.decoder.parameters()).fill_(float("nan"))
    trainer.config.optim.epochs = 3
    with pytest.raises(TrainingDiverged, match=r"became nan at epoch 2, step 5; try a lower --lr .* intact"):
        trainer.fit()
    assert hashlib.sha256((run / "model.safetensors").read_bytes()).hexdigest() == digest
    assert (run / "checkpoints" / "latest").read_text().strip() == "epoch-0001"


def test_under_ema_the_published_and_validated_weights_are_the_average(tmp_path):
    run = tmp_path / "run"
    cfg = TrainConfig.from_flat(run_dir=str(run), arch="mlp", hidden=[32], latent_dim=4, train_size=512, eval_size=64,
                                epochs=2, batch_size=64, lr=2e-3, device="cpu", ema=0.9, tensorboard=False)
    trainer = Trainer(cfg, log=lambda _m: None)

    def raw_validated(*_args):
        raise AssertionError("validation scored the raw weights")

    trainer.model.validation_metrics = raw_validated  # the average, a copy, keeps its own method
    trainer.fit()
    published = load_file(run / "model.safetensors")
    ckpt = run / "checkpoints" / (run / "checkpoints" / "latest").read_text().strip()
    raw, average = load_file(ckpt / "model.safetensors"), load_file(ckpt / "average.safetensors")
    assert int(average["n_averaged"]) == 16  # one update a step: 2 epochs of 8 batches
    for name, value in published.items():
        assert torch.equal(value, average[f"module.{name}"])
    assert any(not torch.equal(published[name], raw[name]) for name in raw)  # the average is not the last step
    with pytest.raises(ConfigError, match="ema is the decay"):
        TrainConfig.from_flat(ema=1.0).validate()


def _train_cmd(run: Path, epochs: int = 4, model: tuple[str, ...] = ("--arch", "conv")) -> list[str]:
    return [sys.executable, "-m", "vaekit.cli", "train", *model, "--latent-dim", "4", "--train-size", "3000",
            "--eval-size", "100", "--batch-size", "50", "--epochs", str(epochs), "--seed", "3", "--run-dir", str(run),
            "--no-tensorboard"]


@pytest.mark.parametrize("model", [("--arch", "conv"),
                                   ("--model", "hvae", "--width", "16", "--groups", "1,1", "--ema", "0.9")],
                         ids=["conv", "hvae-ema"])  # the weight average is resumed where it stopped, too
def test_resume_after_a_real_kill_matches_an_uninterrupted_run(tmp_path, model):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    killed = tmp_path / "killed"
    proc = subprocess.Popen(_train_cmd(killed, model=model), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    latest = killed / "checkpoints" / "latest"
    deadline = time.time() + 300
    while not latest.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    done = int(latest.read_text().strip().split("-")[1])
    assert 1 <= done < 4, "the kill must land before the run finished"
    resumed = subprocess.run([*_train_cmd(killed, model=model), "--resume"], env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming {killed} after epoch {done}" in resumed.stdout
    straight = tmp_path / "straight"
    assert subprocess.run(_train_cmd(straight, model=model), env=env, capture_output=True).returncode == 0
    a, b = load_file(killed / "model.safetensors"), load_file(straight / "model.safetensors")
    for name in b:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=1e-6)
    epochs = [json.loads(line)["epoch"] for line in (killed / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 2, 3, 4]


# conv: channels-last weights on a CPU reduce in another order; hvae: each rank draws the noise of its own slice of
# the batch, so the runs see other draws of z and end close, not equal (an autoencoder draws none)
@pytest.mark.parametrize(("arch", "atol"), [("mlp", 1e-5), ("conv", 1e-3), ("hvae", 5e-2)])
def test_ddp_on_two_cpu_processes_matches_one_process(tmp_path, arch, atol):
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or shutil.which("torchrun")
    assert torchrun, "torchrun comes with torch"
    model = ["--model", "hvae", "--width", "16", "--groups", "1,1"] if arch == "hvae" else ["--model", "ae", "--arch",
                                                                                             arch, "--hidden", "64"]
    common = [*model, "--latent-dim", "4", "--train-size", "512",
              "--eval-size", "64", "--batch-size", "64", "--epochs", "2", "--seed", "1", "--no-tensorboard",
              "--precision", "fp32"]  # bf16's rounding would differ with the reduction order
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    ddp = subprocess.run([torchrun, "--standalone", "--nproc-per-node", "2", "-m", "vaekit.cli", "train",
                          "--run-dir", str(tmp_path / "ddp"), *common], env=env, capture_output=True, text=True)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    single = subprocess.run([sys.executable, "-m", "vaekit.cli", "train", "--run-dir", str(tmp_path / "one"), *common],
                            env=env, capture_output=True, text=True)
    assert single.returncode == 0, single.stderr[-3000:]
    a, b = load_file(tmp_path / "ddp" / "model.safetensors"), load_file(tmp_path / "one" / "model.safetensors")
    for name in b:
        torch.testing.assert_close(a[name], b[name], rtol=1e-4, atol=atol)  # reductions in another order
    assert ddp.stdout.count("epoch 2/2") == 1  # only rank 0 speaks
