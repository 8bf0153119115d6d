"""The shipped quatrain-recall model: a latent that carries the poem, so that `poem reconstruct` and `poem interpolate`
tell the given poems back with the rules kept (docs/benchmarks.md measures it on held-out poems; here on famous
quatrains, checked the same way, and against the writing model, whose latent carries far less)."""

import pytest

import vaekit
from vaekit.cli import main
from vaekit.data import DataError
from vaekit.poetry import VerseRules, format_poem, interpolate, kept_in_place, reconstruct, shipped_name
from vaekit.poetry.evaluate import round_trip
from vaekit.poetry.verse import check
from vaekit.tasks import shipped_names

FAMOUS = ["白日依山盡黃河入海流欲窮千里目更上一層樓", "床前明月光疑是地上霜舉頭望明月低頭思故鄉",
          "紅豆生南國春來發幾枝願君多采擷此物最相思", "移舟泊煙渚日暮客愁新野曠天低樹江清月近人",
          "向晚意不適驅車登古原夕陽無限好只是近黃昏", "千山鳥飛絕萬徑人蹤滅孤舟蓑笠翁獨釣寒江雪",
          "空山不見人但聞人語響返景入深林復照青苔上", "春眠不覺曉處處聞啼鳥夜來風雨聲花落知多少",
          "君自故鄉來應知故鄉事來日綺窗前寒梅著花未", "功蓋三分國名成八陣圖江流石不轉遺恨失吞吳"]
RULES = VerseRules("quatrain")


@pytest.fixture(scope="module")
def recall():
    return vaekit.load("quatrain-recall")


def test_the_recall_model_is_shipped_named_and_used_for_the_forms_that_have_one(recall):
    assert "quatrain-recall" in shipped_names()
    assert shipped_name("quatrain", recall=True) == "quatrain-recall" and shipped_name("couplet", recall=True) == "couplet"
    assert recall.parallel and recall.corpus_lines is not None  # every character from z; the form's line hashes
    with pytest.raises(DataError, match=r"no recall couplet model; train one with `vaekit poem train --form couplet "
                                        r"--recall`"):
        vaekit.load("couplet-recall")


def test_famous_quatrains_are_told_back_keeping_the_rules_far_better_than_by_the_writing_model(recall):
    told = [reconstruct(recall, poem, rules=RULES) for poem in FAMOUS]
    assert all(check(text).fits for text in told), told
    kept = sum(map(kept_in_place, FAMOUS, told)) / len(FAMOUS)
    free = sum(kept_in_place(p, reconstruct(recall, p)) for p in FAMOUS) / len(FAMOUS)
    writer = vaekit.load("quatrain")
    written = sum(kept_in_place(p, reconstruct(writer, p, rules=RULES)) for p in FAMOUS) / len(FAMOUS)
    assert kept >= 0.7 and free >= kept - 0.05 and kept > written + 0.3, (kept, free, written)


def test_the_path_between_two_poems_leaves_the_first_and_reaches_the_second_step_by_step(recall):
    trip = round_trip(recall, FAMOUS, steps=6)
    assert trip["pairs"] == 5 and trip["rules_kept"] == 1.0 and trip["ends_kept"] >= 0.7, trip
    assert trip["monotone"], trip
    path = interpolate(recall, FAMOUS[0], FAMOUS[1], steps=6, rules=RULES)
    assert path[0] == reconstruct(recall, FAMOUS[0], rules=RULES) and path[-1] == reconstruct(recall, FAMOUS[1],
                                                                                               rules=RULES)


def test_the_command_line_tells_back_and_walks_with_the_recall_model(recall, capsys):
    assert main(["poem", "reconstruct", FAMOUS[0]]) == 0
    out = capsys.readouterr().out
    assert out.startswith(format_poem(reconstruct(recall, FAMOUS[0], rules=RULES)))
    assert main(["poem", "interpolate", FAMOUS[2], FAMOUS[3], "--steps", "3"]) == 0
    out = capsys.readouterr().out
    path = interpolate(recall, FAMOUS[2], FAMOUS[3], steps=3, rules=RULES)
    assert out.split("\n\n")[0] == "[0]\n" + format_poem(path[0])
    assert main(["poem", "evaluate", "--themed", "--recall"]) == 2
    assert "two different shipped models" in capsys.readouterr().err
    assert main(["poem", "train", "--recall", "--themed", "--run-dir", "unused"]) == 2
    assert "takes no theme" in capsys.readouterr().err
