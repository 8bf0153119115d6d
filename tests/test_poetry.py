import json
import shutil
from pathlib import Path

import pytest
import torch

import vaekit
from vaekit.cli import main
from vaekit.config import TrainConfig
from vaekit.data import DataError
from vaekit.data.poetry import UNK, Vocabulary, extract_form, fetch_corpus, find_corpus, load_poems, load_strains
from vaekit.poetry import format_poem, shipped_model_dir, write
from vaekit.poetry.metrics import distinct_n, novelty, rhyme_share
from vaekit.poetry.model import PoemVAE
from vaekit.poetry.task import PoemTask
from vaekit.poetry.verse import build_tone_table, line_fits, rhymes
from vaekit.train import Trainer

FIXTURE = Path(__file__).parent / "fixtures" / "poetry"


def test_forms_from_the_fixture_corpus():
    poems = load_poems(FIXTURE)
    assert len(poems) == 173  # 120 quatrains, 40 regulated, 10 seven-character, 3 long five-character poems
    quatrains, regulated = extract_form(poems, "quatrain"), extract_form(poems, "regulated")
    assert len(quatrains) == 120 and len(regulated) == 40
    assert all(len(t) == 20 for t in quatrains) and all(len(t) == 40 for t in regulated)
    couplets = extract_form(poems, "couplet")
    assert len(couplets) == 120 * 2 + 40 * 4 and all(len(c) == 10 for c in couplets)
    assert not any("，" in t or "。" in t for t in couplets)


def test_simplified_conversion_uses_opencc():
    from vaekit.data.poetry import to_simplified

    assert to_simplified(["舉頭望明月", "低頭思故鄉"]) == ["举头望明月", "低头思故乡"]


def test_missing_corpus_says_how_to_get_it(tmp_path):
    with pytest.raises(DataError, match="vaekit poem fetch"):
        find_corpus(tmp_path)


def test_vocabulary_counts_unknowns_and_round_trips():
    vocab = Vocabulary.build(["春眠不覺曉", "春風不度關"], min_count=2)
    assert vocab.chars[0] == UNK and set(vocab.chars[1:]) == {"春", "不"}
    ids = vocab.encode(["春眠不覺曉"])
    assert ids.tolist() == [[vocab.index["春"], 0, vocab.index["不"], 0, 0]]
    assert vocab.decode(ids) == ["春□不□□"]
    assert Vocabulary.from_json(vocab.to_json()).chars == vocab.chars


def test_tone_table_and_patterns():
    poems = load_poems(FIXTURE)
    table = build_tone_table(poems, load_strains(FIXTURE))
    assert len(table) > 300
    assert table.get("平") == "平" and table.get("月") == "仄"
    level = [c for c, t in table.items() if t == "平"][:5]
    oblique = [c for c, t in table.items() if t == "仄"][:5]
    pattern_line = "".join(level[i] if p == "平" else oblique[i] for i, p in enumerate("平平仄仄平"))
    assert line_fits(pattern_line, table) is True
    bad = "".join(level[i] if p == "平" else oblique[i] for i, p in enumerate("平仄平仄仄"))
    assert line_fits(bad, table) is False
    assert line_fits("春眠不覺", table) is False


def test_rhymes_follow_the_pingshui_groups():
    assert rhymes("光", "鄉") and rhymes("霜", "鄉") and not rhymes("光", "月")
    assert rhyme_share(["床前明月光疑是地上霜舉頭望明月低頭思故鄉"]) == 1.0  # 霜/鄉, and 光 (the first line rhymes)


def test_diversity_and_novelty_measures():
    assert distinct_n(["春春春春春"], 1) == pytest.approx(0.2)
    assert distinct_n(["春夏秋冬雪"], 2) == 1.0
    result = novelty(["春夏秋冬雪春夏秋冬雪"], {"x"}, {"春夏秋冬雪"})
    assert result == {"novel_lines": 0.0, "novel_poems": 1.0}


def test_model_interface_shapes():
    model = PoemVAE.build(50, latent_dim=8, embedding_dim=16)
    x = torch.randint(0, 50, (6, 20))
    q = model.posterior(x)
    z = q.rsample((3,))
    assert model.likelihood(z).log_prob(x).shape == (3, 6)
    assert model(x).elbo.shape == (6,)
    out = model.generate(4, temperature=0.8, generator=torch.Generator().manual_seed(0), forbid=[0])
    assert out.shape == (4, 20) and (out != 0).all()


def _poem_config(tmp_path, **kw):
    base = dict(task="poem", run_dir=str(tmp_path / "poem"), form="quatrain", corpus_dir=str(FIXTURE), min_count=1,
                latent_dim=16, embedding_dim=32, batch_size=8, lr=1e-2, epochs=10, device="cpu", tensorboard=False)
    base.update(kw)
    return TrainConfig.from_flat(**base)


def test_training_through_the_shared_trainer_lowers_the_loss_and_writes_well_formed_poems(tmp_path):
    cfg = _poem_config(tmp_path)
    trainer = Trainer(cfg, log=lambda _m: None)
    assert isinstance(trainer.task, PoemTask) and trainer.train_images.shape[1] == 20
    assert len(trainer.task.train_texts) + len(trainer.task.held_texts) == 120 + 2 * 40  # with regulated halves
    assert len(trainer.task.held_texts) == 10  # 5% held out, fixed by seed
    trainer.fit()
    rows = [json.loads(line) for line in (tmp_path / "poem" / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["train_loss"] < rows[0]["train_loss"] - 10
    model = vaekit.load(tmp_path / "poem")
    poems = write(model, 20, seed=1)
    assert len(poems) == 20 and all(len(p) == 20 and UNK not in p for p in poems)
    assert all(c in model.vocab.index for p in poems for c in p)
    assert format_poem(poems[0]).count("\n") == 3 and format_poem(poems[0]).endswith("。")
    sampled = write(model, 20, seed=1, temperature=1.0)
    assert sampled != poems


def test_long_poems_add_training_stanzas_and_never_touch_the_held_out_poems(tmp_path):
    base = PoemTask(_poem_config(tmp_path))
    more = PoemTask(_poem_config(tmp_path, long_stanzas=True))
    assert more.held_texts == base.held_texts  # measured on the same poems with and without them
    added = more.train_texts[len(base.train_texts):]
    assert more.train_texts[:len(base.train_texts)] == base.train_texts
    assert len(added) == 3 + 3 + 4  # lines 1-4, 5-8, 9-12 (and 13-16) of the fixture's three long poems
    assert all(len(t) == 20 for t in added) and not set(added) & set(base.train_texts + base.held_texts)
    assert more.vocab.encode(more.train_texts).shape == (len(more.train_texts), 20)
    from vaekit.data.poetry import extract_stanzas, load_poems

    stanzas = extract_stanzas(load_poems(FIXTURE), 7)  # the ten 12-line seven-character poems, three stanzas each
    assert len(stanzas) == 30 and all(len(t) == 28 for _, t in stanzas)


def test_song_poems_only_train_and_a_text_shared_with_a_held_out_tang_poem_stays_out(tmp_path):
    base = PoemTask(_poem_config(tmp_path))
    more = PoemTask(_poem_config(tmp_path, song=True))
    assert more.held_texts == base.held_texts  # the held-out poems stay the same Tang poems
    assert more.train_texts[:len(base.train_texts)] == base.train_texts
    added = more.train_texts[len(base.train_texts):]
    song = load_poems(FIXTURE, "song")
    assert len(song) == 7
    assert len(added) == 3 + 2  # three quatrains and the regulated poem's halves; the shared text stays out
    assert all(len(t) == 20 for t in added) and not set(added) & set(base.held_texts)
    assert "一雁過連營繁霜覆古城胡笳在何處半夜起邊聲" in base.held_texts
    with_stanzas = PoemTask(_poem_config(tmp_path, song=True, long_stanzas=True))
    assert len(with_stanzas.train_texts) == len(more.train_texts) + 10 + 3  # the Tang and Song long poems' stanzas
    tang_only = tmp_path / "tang"
    (tang_only / "quantangshi").mkdir(parents=True)
    shutil.copy(FIXTURE / "quantangshi" / "poet.tang.0.json", tang_only / "quantangshi")
    with pytest.raises(DataError, match="poet.song.*vaekit poem fetch"):
        PoemTask(_poem_config(tmp_path, song=True, corpus_dir=str(tang_only)))
    assert main(["poem", "train", "--song", "--corpus", str(tang_only), "--run-dir", str(tmp_path / "r"),
                 "--device", "cpu"]) == 2


def test_the_themed_cvae_learns_its_themes_from_whole_poems_and_long_stanzas_as_other(tmp_path):
    from vaekit.data.poetry import Poem
    from vaekit.poetry.task import corpus_items, long_stanza_items
    from vaekit.poetry.themes import THEME_NAMES

    cfg = _poem_config(tmp_path, model="cvae")
    lines = ["白日依山盡", "黃河入海流", "欲窮千里目", "更上一層樓", "春眠不覺曉", "處處聞啼鳥"]
    poems = [Poem("1", "a", "秋夜送友", [lines[0] + "，" + lines[1] + "。", lines[2] + "，" + lines[3] + "。"]),
             Poem("2", "b", "秋夜送友", [a + "，" + b + "。" for a, b in zip(lines[::2], lines[1::2], strict=True)])]
    assert corpus_items(cfg, poems) == [("".join(lines[:4]), THEME_NAMES.index("farewell"))]  # a quatrain: its title
    assert long_stanza_items(cfg, poems) == [("".join(lines[:4]), THEME_NAMES.index("other"))]  # a stanza: other


def test_quatrains_only_keeps_the_strict_form(tmp_path):
    task = PoemTask(_poem_config(tmp_path, regulated_halves=False))
    assert len(task.train_texts) + len(task.held_texts) == 120
    assert task.vocab.encode(task.train_texts).shape == (len(task.train_texts), 20)


def test_poem_commands_end_to_end(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["poem", "train", "--form", "couplet", "--corpus", str(FIXTURE), "--run-dir", str(run), "--epochs", "2",
                 "--min-count", "1", "--latent-dim", "8", "--device", "cpu"]) == 0
    capsys.readouterr()
    assert main(["poem", "write", "--run", str(run), "-n", "3", "--seed", "4"]) == 0
    poems = [p for p in capsys.readouterr().out.strip().split("\n\n") if p]
    assert len(poems) == 3 and all(len(p.splitlines()) == 2 and len(p.splitlines()[0]) == 6 for p in poems)
    assert main(["poem", "interpolate", "--run", str(run), "床前明月光，疑是地上霜。", "舉頭望明月，低頭思故鄉。",
                 "--steps", "4"]) == 0
    assert capsys.readouterr().out.count("[") == 4
    assert main(["poem", "interpolate", "--run", str(run), "太短", "舉頭望明月，低頭思故鄉。"]) == 2
    assert "10 characters" in capsys.readouterr().err
    assert main(["poem", "evaluate", "--run", str(run), "-n", "50", "--corpus", str(FIXTURE)]) == 0
    out = capsys.readouterr().out
    assert "fits a template" in out and "rules kept" in out and "repeats per poem" in out
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["constrained"]["template_fit"] == 1.0 and metrics["constrained"]["doubled_character"] == 0.0
    assert metrics["constrained"]["character_thrice"] == 0.0  # no character more than twice, by default
    assert metrics["acrostic_heads_placed"] == 1.0 and 0 <= metrics["fit"]["reconstruction_accuracy"] <= 1
    trip = metrics["round_trip"]  # `poem interpolate` between held-out pairs: every poem on the paths keeps the rules
    assert trip["rules_kept"] == 1.0 and len(trip["share_of_a"]) == len(trip["share_of_b"]) == trip["steps"]
    assert trip["ends_kept"] == pytest.approx((trip["share_of_a"][0] + trip["share_of_b"][-1]) / 2)
    assert "told back with the rules kept" in out


def test_image_commands_refuse_poem_runs_and_back(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--arch", "mlp", "--hidden", "16", "--train-size", "128", "--epochs", "1",
                 "--run-dir", str(run), "--eval-size", "64"]) == 0
    assert main(["poem", "write", "--run", str(run)]) == 2
    assert "not a poem run" in capsys.readouterr().err


@pytest.mark.parametrize("form", ["quatrain", "couplet"])
def test_shipped_models_write_on_a_fresh_install(form, capsys):
    assert (shipped_model_dir(form) / "model.safetensors").is_file()
    args = ["poem", "write", "-n", "5", "--seed", "0"] + (["--form", form] if form == "couplet" else [])
    assert main(args) == 0
    poems = capsys.readouterr().out.strip().split("\n\n")
    lines = 4 if form == "quatrain" else 2
    assert len(poems) == 5 and all(len(p.splitlines()) == lines for p in poems)
    assert all(len(line) == 6 and "□" not in line for p in poems for line in p.splitlines())
    metrics = json.loads((shipped_model_dir(form) / "metrics.json").read_text())
    assert metrics["form"] == form and "command" in json.loads((shipped_model_dir(form) / "TRAINED.json").read_text())


def test_real_corpus_from_npm(tmp_path):
    if shutil.which("npm") is None:
        pytest.skip("npm absent: the real-corpus test needs it (the fixture tests above cover the code)")
    corpus = fetch_corpus(tmp_path / "corpus")
    poems = load_poems(corpus)
    assert len(poems) == 57607
    assert 3900 < len(extract_form(poems, "quatrain")) < 4050
    assert 14400 < len(extract_form(poems, "regulated")) < 14550
    assert 150_000 < len(extract_form(poems, "couplet")) < 165_000
    assert len(load_strains(corpus)) > 50_000


def test_all_shipped_poem_weights_together_stay_within_60_mb():
    """The budget is for the poem weights (every poem model, the theme classifier and the parallelism table) that
    every clone carries; the training-line hashes beside the models are the no-copy rule's data (8 bytes a line)."""
    from importlib import resources

    from vaekit.poetry import LINES_FILE

    package = Path(str(resources.files("vaekit")))
    shipped = list(package.glob("poetry/shipped/*/*.safetensors"))
    weights = [f for f in shipped if f.name != LINES_FILE]
    models = [f.parent.name for f in weights if f.name == "model.safetensors"]
    assert {"quatrain", "quatrain7", "couplet", "quatrain-themed", "regulated", "regulated7", "ci"} <= set(models)
    assert sum(f.stat().st_size for f in weights) <= 60 * 10**6
    lines = {f.parent.name: f for f in shipped if f.name == LINES_FILE}
    assert set(lines) == {m for m in models if "-" not in m}  # a themed or recall model shares its form's
    assert all(f.stat().st_size < 8 * 800_000 + 1000 for f in lines.values())
    assert sum(f.stat().st_size for f in package.glob("weights/*.safetensors")) < 2 * 10**6  # image classifiers


def test_poem_train_offers_every_poem_setting_as_a_flag_from_its_declaration(tmp_path):
    """A poem setting is one field of PoemConfig: its flag, choices, help and default come from the declaration,
    and the recipe fills what a user leaves out, as before the flags were generated."""
    import argparse
    from dataclasses import fields

    from vaekit.cli import build_parser
    from vaekit.poetry.config import PoemConfig, poem_flags
    from vaekit.poetry.recipe import RECIPE, recipe_settings

    parser = build_parser()
    train = parser._subparsers._group_actions[0].choices["poem"]._subparsers._group_actions[0].choices["train"]
    dests = {a.dest: a for a in train._actions}
    offered = [f.name for f in fields(PoemConfig) if f.metadata["cli"]]
    assert offered and all(name in dests for name in offered)
    assert dests["decoder"].choices == PoemConfig.__dataclass_fields__["decoder"].metadata["choices"]
    assert isinstance(dests["long_stanzas"], argparse.BooleanOptionalAction)
    assert len(poem_flags()) == len(offered)
    args = parser.parse_args(["poem", "train", "--no-long-stanzas", "--free-bits", "0.5"])
    assert args.long_stanzas is False and args.free_bits == 0.5 and args.decoder is None  # None: the recipe's
    settings = recipe_settings(None, "quatrain", {"free_bits": 0.5, "embedding_dim": None})
    assert settings["decoder"] == "causal" and settings["free_bits"] == 0.5
    assert all(settings[k] == v for k, v in RECIPE["causal"].items()) and settings["epochs"] == 12
