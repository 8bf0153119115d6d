"""Start-up: the embedded MNIST inflated while torch imports (same arrays, same refusals, started only when it
will be read), and the collector paused only while the parser imports torch."""

import gc
import gzip
import json
import pickle
import subprocess
import sys
import zlib

import numpy as np
import pytest

from vaekit import preload
from vaekit.cli.train import preload_embedded_mnist
from vaekit.data.mnist import _load_pickle


def _fake_mnist(path, n=30):
    rng = np.random.default_rng(0)
    splits = tuple((rng.integers(0, 256, (n, 784)).astype(np.float32) / 256, rng.integers(0, 10, n).astype(np.int64))
                   for _ in range(3))
    path.write_bytes(gzip.compress(pickle.dumps(splits, protocol=2)))
    return splits


def test_preloaded_pickle_reads_as_the_streamed_one(tmp_path):
    path = tmp_path / "mnist.pkl.gz"
    splits = _fake_mnist(path)
    streamed = _load_pickle(path)
    preload.start(path, preload.MNIST_PICKLE_CAP)
    assert path in preload._started
    loaded = _load_pickle(path)
    assert path not in preload._started  # handed over once: the bytes are not kept
    for name, (x, y) in zip(("train", "valid", "test"), splits, strict=True):
        np.testing.assert_array_equal(loaded[name][0].reshape(len(x), -1), x)
        np.testing.assert_array_equal(loaded[name][1], y)
        np.testing.assert_array_equal(loaded[name][0], streamed[name][0])
        assert loaded[name][0].flags.writeable


def test_inflate_refuses_past_the_cap_and_names_truncation(tmp_path):
    path = tmp_path / "bomb.gz"
    path.write_bytes(gzip.compress(bytes(5_000_000)))
    with pytest.raises(preload.TooLarge):
        preload.inflate_gzip(path, 1_000_000)
    assert len(preload.inflate_gzip(path, 5_000_000)) == 5_000_000
    path.write_bytes(gzip.compress(b"abc" * 1000)[:-20])
    with pytest.raises((EOFError, zlib.error)):
        preload.inflate_gzip(path, 10**6)
    path.write_bytes(gzip.compress(b"one") + gzip.compress(b"two"))
    assert preload.inflate_gzip(path, 10**6) is None  # several members: the loader streams it


def test_a_failed_preload_leaves_the_loader_to_report(tmp_path):
    path = tmp_path / "mnist.pkl.gz"
    path.write_bytes(gzip.compress(b"\x80\x02(garbage")[:-4])
    preload.start(path, preload.MNIST_PICKLE_CAP)
    from vaekit.data import DataError

    with pytest.raises(DataError, match="truncated or corrupt MNIST pickle"):
        _load_pickle(path)


@pytest.mark.parametrize("argv, starts", [
    (["train"], True),
    (["train", "--arch", "mlp", "--dataset", "mnist"], True),
    (["demo", "--minutes", "1"], True),
    (["train", "--dataset", "fashion-mnist"], False),
    (["train", "--dataset=folder", "--data-dir", "x"], False),
    (["train", "--datas", "fashion-mnist"], False),  # an abbreviation argparse accepts
    (["train", "--resume", "--run-dir", "r"], False),  # the run's config decides the data
    (["train", "--config", "a.toml"], False),
    (["train", "--data-dir", "idx"], False),
    (["evaluate", "runs/x"], False),
    ([], False),
])
def test_preload_starts_only_when_the_command_line_says_embedded_mnist(monkeypatch, argv, starts):
    calls = []
    monkeypatch.setattr(preload, "start_embedded_mnist", lambda: calls.append(1))
    monkeypatch.delenv("VAEKIT_DATA", raising=False)
    preload_embedded_mnist(argv)
    assert bool(calls) == starts
    monkeypatch.setenv("VAEKIT_DATA", "/somewhere")
    calls.clear()
    preload_embedded_mnist(argv)
    assert not calls


@pytest.mark.parametrize("dataset, data_dir, starts", [("mnist", None, True), ("mnist", "idx", False),
                                                       ("fashion-mnist", None, False)])
def test_preload_follows_the_run_config_on_resume_not_evaluate(monkeypatch, tmp_path, dataset, data_dir, starts):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"task": "images", "data": {"dataset": dataset,
                                                                             "data_dir": data_dir}}))
    (tmp_path / "poem").mkdir()
    (tmp_path / "poem" / "config.json").write_text(json.dumps({"task": "poem", "data": None}))
    calls = []
    monkeypatch.setattr(preload, "start_embedded_mnist", lambda: calls.append(1))
    monkeypatch.delenv("VAEKIT_DATA", raising=False)
    for argv in (["train", "--resume", "--run-dir", str(run)], ["train", f"--run-dir={run}", "--resume"]):
        calls.clear()
        preload_embedded_mnist(argv)
        assert bool(calls) == starts, argv
    for argv in (["evaluate", str(run)], ["train", "--resume", "--run-dir", str(tmp_path / "poem")]):
        calls.clear()
        preload_embedded_mnist(argv)
        assert not calls


def test_the_command_parses_its_line_before_torch_loads():
    """The preload overlaps torch's import only if nothing before the parser imports torch."""
    code = "import sys, vaekit, vaekit.cli; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("argv", [["--version"], ["train", "--no-such-flag"], ["poem", "--help"]])
def test_main_gives_the_collector_back_even_when_the_parser_exits(argv):
    from vaekit.cli import main

    assert gc.isenabled()
    with pytest.raises(SystemExit):
        main(argv)
    assert gc.isenabled()
    gc.disable()  # a caller that had it off keeps it off
    try:
        with pytest.raises(SystemExit):
            main(argv)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_only_the_console_script_preloads_and_freezes(monkeypatch):
    """A fresh `vaekit` process preloads and freezes its heap at exit; `main`, run by library callers and these
    tests in a process that carries on (its datasets cached), does neither."""
    import vaekit.cli as cli

    started, ran = [], []
    monkeypatch.setattr(preload, "start_embedded_mnist", lambda: started.append(1))
    monkeypatch.delenv("VAEKIT_DATA", raising=False)
    with pytest.raises(SystemExit):
        cli.main(["train", "--no-such-flag"])
    assert not started
    monkeypatch.setattr(cli, "main", lambda argv: ran.append(argv) or 3)
    monkeypatch.setattr(sys, "argv", ["vaekit", "train", "--debug", "--epochs", "1"])
    try:
        assert cli.console() == 3
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
    assert started == [1] and ran == [["train", "--debug", "--epochs", "1"]]
