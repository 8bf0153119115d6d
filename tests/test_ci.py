"""Ci (词) to a tune: the tune table and the 词林正韵 parts, the Song ci read from the corpus, and a CVAE with the tune
as its label whose constrained decoder keeps each tune's lines, tones and rhymes on many seeds."""

from pathlib import Path

import pytest

import vaekit
from vaekit.cli import main
from vaekit.config import TrainConfig
from vaekit.data.poetry import CI_LENGTH, CI_PAD, UNK, load_ci
from vaekit.poetry.ci import write_ci
from vaekit.poetry.task import PoemTask, ci_items
from vaekit.poetry.tunes import (
    FREE,
    _cilin_groups,
    check_ci,
    ci_rhyme,
    cilin_parts,
    find_tune,
    simplified_tones,
    tunes,
)
from vaekit.poetry.verse import pingshui
from vaekit.train import Trainer

FIXTURE = Path(__file__).parent / "fixtures" / "poetry"
YAN_SHU = "一曲新词酒一杯，去年天气旧亭台。夕阳西下几时回？无可奈何花落去，似曾相识燕归来。小园香径独徘徊。"  # 晏殊 浣溪沙
LI_BAI = "平林漠漠烟如织，寒山一带伤心碧。暝色入高楼，有人楼上愁。玉阶空伫立，宿鸟归飞急。何处是归程？长亭更短亭。"


def test_every_shipped_tune_is_well_formed():
    shipped = tunes()
    assert len(shipped) == 30 and len({t.name for t in shipped}) == 30
    for tune in shipped:
        assert tune.chars == sum(tune.lines) <= CI_LENGTH and len(tune.stops) == len(tune.lines)
        assert [len(p) for p in tune.tones] == list(tune.lines)
        assert all(set(p) <= {"平", "仄", FREE} for p in tune.tones)
        rhymed = [i for group in tune.rhymes for i in group]
        assert rhymed and len(rhymed) == len(set(rhymed)) and all(0 <= i < len(tune.lines) for i in rhymed)
        assert len(tune.rhyme_tones) == len(tune.rhymes) and tune.poems <= tune.total
    by_name = {t.name: t for t in shipped}
    assert by_name["浣溪沙"].lines == (7,) * 6 and by_name["浣溪沙"].rhyme_lines == (0, 1, 2, 4, 5)
    assert by_name["如梦令" if "如梦令" in by_name else "菩萨蛮"].chars in (33, 44)
    pu_sa_man = by_name["菩萨蛮"]  # two lines a rhyme, turning between oblique and level
    assert pu_sa_man.rhymes == ((0, 1), (2, 3), (4, 5), (6, 7)) and pu_sa_man.rhyme_tones == ("仄", "平", "仄", "平")
    assert by_name["水调歌头"].chars == 95 and by_name["念奴娇"].chars == 100 and by_name["西江月"].chars == 50


def test_tunes_are_found_by_simplified_traditional_and_other_names():
    assert find_tune("菩薩蠻").name == "菩萨蛮" and find_tune(" 浣溪沙 ").name == "浣溪沙"
    assert find_tune("憶江南").name == find_tune("忆江南").name == "望江南"
    with pytest.raises(ValueError, match="vaekit poem tunes"):
        find_tune("小重山")


def test_the_cilin_parts_merge_the_pingshui_groups():
    groups = _cilin_groups()
    assert set(groups) == set(pingshui().members)  # every Pingshui group has a part
    parts = {p for ps in groups.values() for p in ps}
    assert len(parts) == 19
    split = {g for g, ps in groups.items() if len(ps) == 2}
    assert len(split) == 9 and all(len(ps) <= 2 for ps in groups.values())
    entering = {g for g in groups if g.startswith("入")}
    assert all(p in {"第十五部", "第十六部", "第十七部", "第十八部", "第十九部"} for g in entering for p in groups[g])
    assert ci_rhyme("光", "霜") and ci_rhyme("杯", "台") and not ci_rhyme("光", "东")
    assert not ci_rhyme("织", "光")  # an entering tone rhymes only with the entering tones
    assert cilin_parts("光") == {"第二部"}
    assert simplified_tones("干") == {"平", "仄"}  # from 乾 and 干 (level) and 幹 (oblique)


def test_check_ci_on_famous_ci_and_on_broken_ones():
    assert check_ci(YAN_SHU, "浣溪沙") == [] and check_ci(LI_BAI, "菩萨蛮") == []
    off_rhyme = YAN_SHU.replace("徘徊", "徘何")
    assert [b.rule[:5] for b in check_ci(off_rhyme, "浣溪沙")] == ["rhyme"]
    assert "42 characters" in check_ci(YAN_SHU[:-3], "浣溪沙")[0].rule
    off_tone = LI_BAI.replace("平林", "白林")  # 菩萨蛮 line 1 asks a level 2nd character... 林 stays; 平 -> 白 is free
    assert check_ci(off_tone, "菩萨蛮") == []
    assert any(b.line == 0 and b.position == 1 for b in check_ci(LI_BAI.replace("平林", "平月"), "菩萨蛮"))


def test_poem_tunes_lists_and_shows(capsys):
    assert main(["poem", "tunes"]) == 0
    out = capsys.readouterr().out
    assert all(t.name in out for t in tunes())
    assert main(["poem", "tunes", "菩薩蠻"]) == 0
    out = capsys.readouterr().out
    assert "44 characters in 8 lines" in out and out.count("rhymes (") == 8
    assert main(["poem", "tunes", "小重山"]) == 2
    assert "no tune is named" in capsys.readouterr().err


def test_the_ci_of_the_fixture_are_read_and_only_the_shipped_tunes_in_their_shape_kept():
    assert len(load_ci(FIXTURE)) == 65
    config = TrainConfig.from_flat(task="poem", model="cvae", form="ci", corpus_dir=str(FIXTURE), device="cpu")
    items = ci_items(config)
    assert len(items) == 60  # 20 each of three tunes; unknown tunes, other tunes and other shapes left out
    names = [t.name for t in tunes()]
    assert {names[label] for _, label in items} == {"浣溪沙", "菩萨蛮", "点绛唇"}
    for text, label in items:
        tune = tunes()[label]
        assert len(text) == CI_LENGTH and set(text[tune.chars:]) <= {CI_PAD} and CI_PAD not in text[:tune.chars]


@pytest.fixture(scope="module")
def tiny_ci(tmp_path_factory):
    run = tmp_path_factory.mktemp("ci") / "run"
    config = TrainConfig.from_flat(task="poem", model="cvae", form="ci", corpus_dir=str(FIXTURE), run_dir=str(run),
                                   min_count=1, latent_dim=8, embedding_dim=32, decoder="causal", decoder_layers=2,
                                   encoder_pooling="flatten", batch_size=16, lr=3e-3, epochs=3, device="cpu",
                                   tensorboard=False)
    trainer = Trainer(config, log=lambda _m: None)
    assert isinstance(trainer.task, PoemTask) and trainer.train_images.shape[1] == CI_LENGTH
    assert config.class_names == [t.name for t in tunes()]  # the tune is the label
    trainer.fit()
    return run


@pytest.mark.parametrize("name", ["浣溪沙", "菩萨蛮", "点绛唇"])
def test_ci_keep_their_tune_over_many_seeds(tiny_ci, name):
    model = vaekit.load(tiny_ci)
    tune = find_tune(name)
    texts = write_ci(model, tune, 60, seed=5)
    assert len(set(texts)) > 50
    for text in texts:
        assert len(text) == tune.chars and UNK not in text and CI_PAD not in text
        assert check_ci(text, tune) == [], (text, check_ci(text, tune))
        for group in tune.rhymes:  # no rhyme character twice in a set
            ends = [tune.split(text)[i][-1] for i in group]
            assert len(set(ends)) == len(ends)
    free = write_ci(model, tune, 20, seed=5, rules=False)
    assert all(len(t) == tune.chars for t in free)
    assert sum(bool(check_ci(t, tune)) for t in free) > 0  # without the rules, the tune is not kept by itself


def test_writing_ci_on_the_command_line(tiny_ci, capsys):
    assert main(["poem", "write", "--run", str(tiny_ci), "--tune", "菩薩蠻", "-n", "2", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("菩萨蛮\n") and out.count("。") + out.count("，") == 2 * 8
    assert main(["poem", "write", "--run", str(tiny_ci), "--tune", "菩萨蛮", "-n", "1", "--seed", "1",
                 "--traditional"]) == 0
    assert capsys.readouterr().out.startswith("菩薩蠻\n")
    assert main(["poem", "write", "--run", str(tiny_ci), "--tune", "菩萨蛮", "--acrostic", "春夏"]) == 2
    assert "--acrostic: for the verse forms only" in capsys.readouterr().err
    assert main(["poem", "write", "--run", str(tiny_ci), "--tune", "小重山"]) == 2
    assert "no tune is named" in capsys.readouterr().err


def test_the_page_writes_ci_to_a_tune(tiny_ci):
    from starlette.testclient import TestClient

    from vaekit.serve.app import create_app

    client = TestClient(create_app([], {"ci": tiny_ci}, port=8000), base_url="http://127.0.0.1:8000")
    listed = client.get("/api/poems").json()
    assert "ci" in listed["forms"] and listed["tunes"][:2] == ["浣溪沙", "水调歌头"]
    r = client.post("/api/poem", json={"form": "ci", "tune": "菩萨蛮", "n": 2, "seed": 3, "simplified": True})
    assert r.status_code == 200 and r.json()["punctuated"] and len(r.json()["poems"][0]) == 8
    text = "".join(r.json()["poems"][0])
    assert check_ci(text, "菩萨蛮") == []
    for body, words in (({"form": "ci", "tune": "小重山"}, "no tune is named"),
                        ({"form": "ci", "tune": "菩萨蛮", "acrostic": "春夏"}, "verse forms only"),
                        ({"form": "ci", "a": "x", "b": "y"}, None)):
        r = client.post("/api/poem", json=body) if words else client.post("/api/poem/interpolate", json=body)
        assert r.status_code == 400 and (words is None or words in r.json()["error"])
    assert set(r.json()) == {"error"}  # one sentence, as JSON


def test_interpolating_and_evaluating_ci(tiny_ci, tmp_path, capsys):
    from vaekit.poetry.ci import interpolate_ci

    model = vaekit.load(tiny_ci)
    path = interpolate_ci(model, YAN_SHU, YAN_SHU.replace("一曲新词", "一向年光"), "浣溪沙", steps=4)
    assert len(path) == 4 and all(check_ci(t, "浣溪沙") == [] for t in path)
    with pytest.raises(ValueError, match="has 42 characters"):
        interpolate_ci(model, YAN_SHU, LI_BAI, "浣溪沙")
    assert main(["poem", "interpolate", "--run", str(tiny_ci), YAN_SHU, YAN_SHU]) == 2
    assert "--tune" in capsys.readouterr().err
    out = tmp_path / "m.json"
    assert main(["poem", "evaluate", "--run", str(tiny_ci), "-n", "30", "--corpus", str(FIXTURE),
                 "--out", str(out)]) == 0
    import json

    r = json.loads(out.read_text())
    assert r["constrained"]["tune_kept"] == 1.0 and r["per_tune"] == 1 and r["fit_ci"] == 3
    assert r["unconstrained"]["tune_kept"] < 1.0


def test_the_shipped_ci_model_keeps_every_tune_on_many_seeds():
    model = vaekit.load("ci")
    assert model.run_config.class_names == [t.name for t in tunes()]
    for k, tune in enumerate(tunes()):
        texts = write_ci(model, tune, 10, seed=k)
        for text in texts:
            assert len(text) == tune.chars and UNK not in text and CI_PAD not in text
            assert check_ci(text, tune) == [], (tune.name, tune.format(text), check_ci(text, tune))
        assert len(set(texts)) == 10
