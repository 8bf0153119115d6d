"""The newer surfaces tried as a hostile or careless user would: the poem command, config files, image folders,
model sizes and the serve command. Each case answers with one sentence (exit 2) or works within bounds."""

import errno
import os
import socket
from pathlib import Path

import pytest
import torch
from PIL import Image

import vaekit
from vaekit.cli import main
from vaekit.config import MAX_CONFIG_BYTES, ConfigError, TrainConfig, load_config_file
from vaekit.data import DataError
from vaekit.data.folder import load_folder_arrays
from vaekit.poetry import VerseRules, write
from vaekit.poetry.decode import MAX_CANDIDATES, ConstraintError, check_sampling, rules_from_options
from vaekit.poetry.verse import check, has_doubled_character

FIXTURE = Path(__file__).parent / "fixtures" / "poetry"


def run(*args: str) -> int:
    """The command's exit code, whether the parser (SystemExit) or the command refused."""
    try:
        return main(list(args))
    except SystemExit as e:
        return int(e.code)


def one_sentence(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "error" in line]
    assert "Traceback" not in err and "internal error" not in err and len(lines) == 1, err
    assert len(lines[0]) < 400, lines[0]
    return lines[0]


# ---------------------------------------------------------------- the poem command

@pytest.mark.parametrize(("args", "message"), [
    (["--first-line", "白日依山盡", "--template", "平起首句入韵"], "does not rhyme"),
    (["--temperature", "1e308"], "temperature must be 0 (argmax) or between"),
    (["--temperature", "1e-300"], "temperature must be 0 (argmax) or between"),
    (["--repeat-penalty", "1e308"], "repeat_penalty is nats"),
    (["--seed", str(2**64)], "--seed: must be between 0 and"),
    (["--seed", "-1"], "--seed: must be between 0 and"),
    (["--beam", "64"], "--beam: must be between 2 and 16"),
    (["-n", "100", "--best-of", "100"], "candidates is more than one call writes"),
    (["-n", "200", "--beam", "16"], "candidates is more than one call writes"),
    (["--acrostic", "□夏秋冬"], "mark for an unknown character"),
    (["--first-line", "白日依山□"], "mark for an unknown character"),
    (["--keywords", "月,□"], "mark for an unknown character"),
])
def test_poem_write_refuses_with_one_sentence(capsys, args, message):
    assert run("poem", "write", "-n", "2", *args) == 2
    assert message in one_sentence(capsys)


def test_poem_interpolate_refuses_a_seed_out_of_range(capsys):
    assert run("poem", "interpolate", "床前明月光疑是地上霜", "舉頭望明月低頭思故鄉", "--form", "couplet",
               "--seed", str(2**64)) == 2
    assert "--seed" in one_sentence(capsys)


def test_a_first_line_that_cannot_rhyme_is_refused_by_the_library_too():
    model = vaekit.load("quatrain")
    with pytest.raises(ConstraintError, match="does not rhyme"):
        write(model, 2, seed=0, temperature=0.85, rules=VerseRules("quatrain", template="平起首句入韵",
                                                                   first_line="白日依山盡"))
    # with the template left to choose, the same line is continued under one whose first line does not rhyme
    poems = write(model, 8, seed=0, temperature=0.85, rules=VerseRules("quatrain", first_line="白日依山盡"))
    assert all(p.startswith("白日依山盡") and check(p).fits for p in poems)


@pytest.mark.parametrize("settings", [{"temperature": 10.0}, {"temperature": 0.01},
                                      {"temperature": 0.85, "repeat_penalty": 100.0}, {"temperature": 0.0}])
def test_the_extremes_still_in_range_keep_every_rule(settings):
    model = vaekit.load("quatrain")
    poems = write(model, 64, seed=7, rules=VerseRules("quatrain"), top_p=0.95, **settings)
    assert len(poems) == 64
    for poem in poems:
        assert check(poem).fits, poem
        assert "□" not in poem and not has_doubled_character(poem)
        assert max(poem.count(c) for c in poem) <= 2, poem


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"temperature": float("nan")}, "temperature"), ({"temperature": 0.001}, "temperature"),
    ({"top_p": 0.0}, "top_p"), ({"repeat_penalty": -1.0}, "repeat_penalty"), ({"beam": 1}, "beam"),
    ({"beam": 17}, "beam"), ({"n": MAX_CANDIDATES + 1}, "candidates"), ({"n": 0}, "n must be"),
    ({"n": 10, "best_of": 201}, "candidates"), ({"best_of": True}, "best_of"),
])
def test_sampling_settings_are_checked_in_one_place(kwargs, message):
    with pytest.raises(ValueError, match=message):
        check_sampling(**kwargs)
    check_sampling(n=MAX_CANDIDATES)  # the bound itself is allowed


def test_rules_read_alike_on_the_command_line_and_the_page():
    rules = rules_from_options("quatrain", template="none", rhyme="OFF", keywords="月，山, 水", max_uses=0)
    assert rules.template is None and rules.rhyme is None and rules.keywords == ("月", "山", "水")
    assert rules.max_uses is None
    blank = rules_from_options("quatrain", template="", rhyme=None)
    assert blank.template == "auto" and blank.rhyme == "auto" and blank.max_uses == 2
    poems = write(vaekit.load("quatrain"), 6, seed=3, temperature=0.85, rules=rules)
    assert all(all(k in p for k in "月山水") for p in poems)


def test_poem_evaluate_fits_as_many_held_out_poems_as_asked(tmp_path, capsys):
    out = tmp_path / "m.json"
    assert main(["poem", "evaluate", "--form", "couplet", "--corpus", str(FIXTURE), "-n", "3", "--out", str(out)]) == 0
    import json

    result = json.loads(out.read_text())
    assert result["fit_poems"] == min(3, result["held_out_poems"]) and result["poems"] == 3
    assert "evaluate: fitting" in capsys.readouterr().err  # a progress line for each stage


# ---------------------------------------------------------------- config files

def _config(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "c.toml"
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


@pytest.mark.parametrize(("text", "message"), [
    ("x = " + "[" * 100_000 + "]" * 100_000, "larger than a config file"),
    ("x = " + "[" * 5_000 + "]" * 5_000, "nested too deeply"),
    ("a" + ".a" * 200_000 + " = 1", "larger than a config file"),
    ("latent_dim = 4\nlatent-dim = 8", "given twice"),
    ("restarts = [3]", "vaekit's own record"),
    ("chosen = {}", "vaekit's own record"),
])
def test_config_files_are_refused_before_they_cost_anything(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        load_config_file(_config(tmp_path, text))


def test_a_device_given_as_config_is_read_only_up_to_the_cap():
    with pytest.raises(ConfigError, match="larger than a config file"):
        load_config_file("/dev/zero")
    assert MAX_CONFIG_BYTES <= 64 * 1024


def test_an_error_about_a_huge_list_does_not_echo_it(tmp_path, capsys):
    path = _config(tmp_path, "hidden = [" + ", ".join(["0"] * 3000) + "]")
    assert main(["train", "--config", str(path), "--run-dir", str(tmp_path / "r")]) == 2
    line = one_sentence(capsys)
    assert "hidden must be" in line and "3,000 items" in line


@pytest.mark.parametrize(("values", "message"), [
    ({"image_size": 512}, "image_size applies to --dataset folder only"),
    ({"dataset": "fashion-mnist", "channels": 3}, "channels applies to --dataset folder only"),
    ({"seed": 2**63 - 1}, "seed must be a whole number from 0"),
    ({"seed": -1}, "seed must be a whole number from 0"),
    ({"model": "iwae", "k": 100_000}, "k x batch_size"),
])
def test_settings_that_cannot_apply_are_refused(values, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig.from_flat(**values)


def test_image_size_still_applies_to_a_folder():
    assert TrainConfig.from_flat(dataset="folder", data_dir="x", image_size=64, channels=3).data.image_size == 64


def test_a_model_too_large_to_train_is_refused_before_allocating(tmp_path, capsys):
    assert main(["train", "--arch", "mlp", "--hidden", ",".join(["16384"] * 16), "--train-size", "64",
                 "--epochs", "1", "--run-dir", str(tmp_path / "big"), "--no-tensorboard"]) == 2
    assert "parameters" in one_sentence(capsys)
    assert not (tmp_path / "big" / "model.safetensors").exists()


# ---------------------------------------------------------------- image folders and the serve command

def test_an_unreadable_class_folder_is_named_not_skipped(tmp_path, monkeypatch):
    for name in ("cats", "dogs"):
        (tmp_path / name).mkdir()
        for i in range(3):
            Image.new("L", (8, 8), 40 * i).save(tmp_path / name / f"{i}.png")
    real = os.scandir

    def scandir(path="."):
        if Path(path).name == "dogs":
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    with pytest.raises(DataError, match="dogs: cannot list the folder"):
        load_folder_arrays(tmp_path, size=8)


def test_serve_on_a_busy_port_says_so_before_printing_a_url(capsys):
    pytest.importorskip("uvicorn")
    from vaekit.serve import serve

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ValueError, match=f"port {port} is in use; pass --port"):
            serve([], port=port)
    assert "http://" not in capsys.readouterr().out


def test_seeds_reach_torch_only_in_range():
    from vaekit.seeds import MAX_SEED, check_seed

    assert check_seed(MAX_SEED) == MAX_SEED
    torch.Generator().manual_seed(MAX_SEED)  # the largest seed allowed is one torch takes
    for bad in (-1, MAX_SEED + 1, 1.5, True, "3"):
        with pytest.raises(ValueError, match="seed must be"):
            check_seed(bad)
