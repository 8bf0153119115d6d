"""Own images in colour, figures that explain themselves, and a command line that guides (defaults, groups,
examples, labels by name, extending a finished run, --out, TensorBoard, MLflow, downloading Fashion-MNIST)."""

import argparse
import hashlib
import json
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import vaekit
from vaekit.cli import build_parser, main
from vaekit.config import TrainConfig
from vaekit.data import DataError
from vaekit.plots import TITLE_BAND, image_grid, save_samples

COLOURS = {"red": (220, 30, 30), "green": (30, 180, 40), "blue": (40, 60, 220)}
TINY = ["--epochs", "1", "--batch-size", "32", "--no-tensorboard"]


def colour_folder(root: Path, per_class: int = 60, size: int = 16) -> Path:
    """Squares of three colours on white, at random places, one subfolder a colour."""
    rng = np.random.default_rng(0)
    for name, rgb in COLOURS.items():
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            img = np.full((size, size, 3), 255, dtype=np.uint8)
            side = rng.integers(5, 9)
            r, c = rng.integers(0, size - side, 2)
            img[r:r + side, c:c + side] = rgb
            Image.fromarray(img).save(root / name / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def colour_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("colour")
    data = colour_folder(root / "shapes", per_class=300)
    run = root / "run"
    assert main(["train", "--dataset", "folder", "--data-dir", str(data), "--image-size", "16", "--channels", "3",
                 "--latent-dim", "8", "--epochs", "100", "--batch-size", "32", "--run-dir", str(run),
                 "--no-tensorboard"]) == 0
    return run, data


def test_colour_images_get_a_colour_likelihood_and_keep_their_colour(colour_run):
    run, _ = colour_run
    config = json.loads((run / "config.json").read_text())  # nested: one table per concern
    assert config["model"]["likelihood"] == "discretized_logistic" and config["model"]["learn_scale"]
    assert config["data"]["binarization"] == "none" and config["poem"] is None
    assert "likelihood" in config["chosen"] and config["class_names"] == ["blue", "green", "red"]
    model = vaekit.load(run)
    from vaekit.data import load_dataset

    data = load_dataset("folder", str(colour_run[1]), 16, 3, 0)
    x, y = data.valid.images, data.valid.labels
    recon = model.reconstruct(x)
    per_channel = (recon - x).pow(2).mean(dim=(0, 2, 3))
    assert bool((per_channel < 0.01).all()), per_channel  # every channel is fitted, not only their average
    for label, name in enumerate(["blue", "green", "red"]):  # the dominant channel of each class survives
        dark = (recon[y == label] < 0.8).any(dim=1, keepdim=True).expand_as(recon[y == label])
        channel_means = (recon[y == label] * dark).sum(dim=(0, 2, 3)) / dark.sum(dim=(0, 2, 3)).clamp(min=1)
        expected = int(np.argmax(COLOURS[name]))
        assert int(channel_means.argmax()) == expected, (name, channel_means)
    spread = recon.std(dim=1).mean()  # grey images have (almost) no spread across channels
    assert float(spread) > 0.5 * float(x.std(dim=1).mean())


def test_own_colour_images_keep_their_colour_at_the_default_flags(tmp_path, capsys):
    data = colour_folder(tmp_path / "shapes", per_class=100)
    run = tmp_path / "run"
    assert main(["train", "--dataset", "folder", "--data-dir", str(data), "--image-size", "16", "--channels", "3",
                 "--run-dir", str(run), "--no-tensorboard"]) == 0  # nothing else: the epochs follow the data
    out = capsys.readouterr().out
    config = json.loads((run / "config.json").read_text())
    steps = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])["step"]
    assert steps >= 500 and config["optim"]["epochs"] > 10 and "chose epochs" in out and "left" in out
    assert len([line for line in out.splitlines() if line.startswith("epoch ")]) <= 26  # thinned, not 500 lines
    from vaekit.data import load_dataset

    x = load_dataset("folder", str(data), 16, 3, 0).valid.images
    recon = vaekit.load(run).reconstruct(x)
    assert float(recon.std(dim=1).mean()) >= 0.6 * float(x.std(dim=1).mean())  # colour, not grey


def test_epochs_follow_the_data_only_where_nothing_else_says():
    mnist = TrainConfig.from_flat()
    mnist.follow_data(50_000)
    assert mnist.optim.epochs == 10  # ten epochs of MNIST are already 3,900 steps
    folder = TrainConfig.from_flat(dataset="folder", data_dir="x")
    folder.follow_data(1_200)
    assert folder.optim.epochs == 112 and "1,008 steps" in folder.chosen["epochs"]
    for given in (TrainConfig.from_flat(dataset="folder", data_dir="x", epochs=3),
                  TrainConfig.from_flat(dataset="folder", data_dir="x", train_size=500)):  # a quick run stays quick
        given.follow_data(1_200)
        assert given.optim.epochs == (3 if given.data.train_size is None else 10)


def test_bernoulli_on_colour_images_warns(colour_run, capsys, tmp_path):
    _, data = colour_run
    assert main(["train", "--dataset", "folder", "--data-dir", str(data), "--image-size", "16", "--channels", "3",
                 "--likelihood", "bernoulli", "--binarization", "dynamic", "--arch", "mlp", "--hidden", "16",
                 "--run-dir", str(tmp_path / "b"), *TINY]) == 0
    assert "warning: a Bernoulli likelihood on colour images" in capsys.readouterr().out


def test_explicit_flags_win_over_the_data_defaults():
    config = TrainConfig.from_flat(dataset="fashion-mnist", likelihood="bernoulli", binarization="dynamic", norm="none")
    assert (config.model.likelihood, config.data.binarization, config.model.learn_scale) == ("bernoulli", "dynamic", False)
    assert config.model.norm == "none" and not {"likelihood", "norm"} & set(config.chosen or {})
    mnist = TrainConfig.from_flat()
    assert (mnist.model.likelihood, mnist.data.binarization) == ("bernoulli", "dynamic")  # MNIST keeps the NLL protocol
    assert mnist.model.norm == "none"  # and the flagship's architecture, whose numbers docs/benchmarks.md reports
    fashion = TrainConfig.from_flat(dataset="fashion-mnist")
    assert (fashion.model.likelihood, fashion.model.learn_scale, fashion.model.norm) == ("discretized_logistic", True,
                                                                                         "batch")
    assert {"likelihood", "learn_scale", "norm"} <= set(fashion.chosen)
    assert TrainConfig.from_flat(dataset="fashion-mnist", arch="mlp").model.norm == "none"  # conv nets only
    logistic = TrainConfig.from_flat(likelihood="discretized_logistic", binarization="none")
    assert logistic.model.learn_scale  # asked for by name, it still learns its scale unless told not to


def test_labels_by_class_name(colour_run, tmp_path, capsys):
    _, data = colour_run
    run = tmp_path / "cvae"
    assert main(["train", "--model", "cvae", "--dataset", "folder", "--data-dir", str(data), "--image-size", "16",
                 "--channels", "3", "--arch", "mlp", "--hidden", "16", "--run-dir", str(run), *TINY]) == 0
    capsys.readouterr()
    assert main(["sample", str(run), "--label", "Red", "-n", "4"]) == 0
    assert capsys.readouterr().out.strip().endswith("samples-label2.png")
    assert main(["sample", str(run), "--label", "purple"]) == 2
    assert "one of blue, green, red" in capsys.readouterr().err


def test_figures_carry_their_caption():
    model = vaekit.models.build_model(vaekit.models.ModelConfig(arch="mlp", hidden=[8], latent_dim=2)).eval()
    torch.manual_seed(0)
    bare = image_grid(model.sample(4), nrow=2)
    torch.manual_seed(0)
    path = save_samples(model, Path(__import__("tempfile").mkdtemp()) / "s.png", 4, title="my run, epoch 3")
    with Image.open(path) as img:
        assert img.size == (bare.width, bare.height + TITLE_BAND)
        captioned = np.asarray(img.convert("L"))
    assert np.array_equal(captioned[TITLE_BAND:], np.asarray(bare))  # the grid itself, untouched
    assert (captioned[:TITLE_BAND] < 100).sum() > 50  # dark text in the title band


def test_resume_with_more_epochs_extends_a_finished_run(tmp_path):
    run = tmp_path / "r"
    args = ["--arch", "mlp", "--hidden", "16", "--latent-dim", "2", "--train-size", "256", "--eval-size", "32",
            "--batch-size", "64", "--no-tensorboard", "--run-dir", str(run)]
    assert main(["train", "--epochs", "2", *args]) == 0
    assert main(["train", "--resume", "--epochs", "4", "--run-dir", str(run)]) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["optim"]["epochs"] == 4 and config["restarts"] == [2]
    lrs = [json.loads(line)["lr"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(lrs) == 4 and lrs[1] < 1e-9  # the first cycle ended at 0
    assert 0 < lrs[2] < 0.5e-3 and lrs[3] < 1e-9  # a new, lower cycle, ending at 0 again


def test_evaluate_out_writes_where_it_says(colour_run, tmp_path, capsys):
    run, _ = colour_run
    out = tmp_path / "somewhere" / "scores.json"
    assert main(["evaluate", str(run), "--k", "10", "--limit", "8", "--samples", "0", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["nll"]["k"] == 10


def _all_actions(parser: argparse.ArgumentParser, path: str = "vaekit"):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _all_actions(sub, f"{path} {name}")
        elif not isinstance(action, argparse._HelpAction | argparse._VersionAction):
            yield path, action


def test_every_option_of_every_command_has_help():
    missing = [f"{path} {action.dest}" for path, action in _all_actions(build_parser()) if not action.help]
    assert not missing


def test_train_help_is_grouped_with_defaults_and_examples(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = capsys.readouterr().out
    for title in ("data:", "model:", "objective (what is optimised):", "optimisation:", "run (where, how, resume):",
                  "examples:"):
        assert title in text
    assert "(default: 16)" in text and "(default: 128)" in text  # latent-dim and batch-size


def test_tensorboard_holds_steps_images_and_the_config(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "tb"
    assert main(["train", "--arch", "mlp", "--hidden", "16", "--latent-dim", "2", "--train-size", "640",
                 "--eval-size", "32", "--epochs", "2", "--batch-size", "32", "--run-dir", str(run)]) == 0
    events = EventAccumulator(str(run / "tensorboard"), size_guidance={"images": 0, "tensors": 0}).Reload()
    tags = events.Tags()
    assert {"step/loss", "step/kl"} <= set(tags["scalars"]) and len(events.Scalars("step/loss")) >= 3
    assert {"samples", "reconstructions"} <= set(tags["images"]) and len(events.Images("samples")) == 2
    assert any("config" in t for t in tags["tensors"])


def test_mlflow_gets_params_and_metrics_when_asked(tmp_path, monkeypatch):
    calls = []
    fake = types.SimpleNamespace(start_run=lambda **kw: calls.append(("start", kw)),
                                 log_params=lambda p: calls.append(("params", p)),
                                 log_metrics=lambda m, step: calls.append(("metrics", step, m)),
                                 end_run=lambda: calls.append(("end",)))
    monkeypatch.setitem(sys.modules, "mlflow", fake)
    assert main(["train", "--arch", "mlp", "--hidden", "16", "--latent-dim", "2", "--train-size", "64",
                 "--eval-size", "32", "--run-dir", str(tmp_path / "m"), "--mlflow", *TINY]) == 0
    kinds = [c[0] for c in calls]
    assert kinds == ["start", "params", "metrics", "end"]
    assert calls[1][1]["latent_dim"] == 2 and "valid_elbo" in calls[2][2]


def test_fashion_mnist_downloads_and_checks_its_files(tmp_path, monkeypatch):
    from vaekit.data import download

    source = tmp_path / "mirror"
    source.mkdir()
    sizes = {}
    for name in download.FASHION_FILES:
        data = (b"\x1f\x8b" + name.encode()) * 50
        (source / name).write_bytes(data)
        sizes[name] = (len(data), hashlib.md5(data).hexdigest())
    monkeypatch.setattr(download, "FASHION_MIRRORS", (source.as_uri() + "/",))
    monkeypatch.setattr(download, "FASHION_FILES", sizes)
    paths = download.download_fashion_mnist(tmp_path / "data")
    assert [p.read_bytes() for p in paths] == [(source / n).read_bytes() for n in sizes]
    (source / "t10k-labels-idx1-ubyte.gz").write_bytes(b"tampered")
    (tmp_path / "data" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="could not download t10k-labels-idx1-ubyte.gz"):
        download.download_fashion_mnist(tmp_path / "data")
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == sorted(set(sizes) - {"t10k-labels-idx1-ubyte.gz"})


def test_download_is_refused_for_other_datasets(tmp_path, capsys):
    assert main(["train", "--download", "--run-dir", str(tmp_path / "r")]) == 2
    assert "--download fetches Fashion-MNIST" in capsys.readouterr().err


def test_a_narrow_grid_keeps_its_title_inside_the_figure(tmp_path):
    from vaekit.models import ModelConfig, build_model

    model = build_model(ModelConfig(model="cvae", arch="mlp", hidden=[8], latent_dim=2)).eval()
    path = save_samples(model, tmp_path / "s.png", n=4, label=3, title="a-rather-long-run-name, epoch 12",
                        class_names=[f"class-{i}" for i in range(10)])
    with Image.open(path) as img:
        band = np.asarray(img.convert("L"))[:TITLE_BAND]
    assert (band < 128).any()  # a title is drawn
    assert (band[:, -5:] > 200).all()  # and it ends before the right edge instead of running off it
