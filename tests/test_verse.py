"""Verse rules on known poems, and the constrained decoder on many seeds: no poem it writes breaks a rule."""

import random
from collections import Counter

import pytest
import torch

import vaekit
from vaekit.cli import main
from vaekit.data.poetry import UNK, to_simplified
from vaekit.poetry import ConstraintError, VerseRules, interpolate, poem_scores, write
from vaekit.poetry.decode import LineSet, decode
from vaekit.poetry.verse import check, has_doubled_character, lines_of_text, pingshui, rhyme_groups, templates, tones

DENG_GUAN_QUE_LOU = "白日依山盡黃河入海流欲窮千里目更上一層樓"  # 王之渙, 仄起 with 白 oblique
ZAO_FA_BAI_DI = "朝辭白帝彩雲間千里江陵一日還兩岸猿聲啼不住輕舟已過萬重山"  # 李白, 七绝 平起首句入韵
DENG_GAO = ("風急天高猿嘯哀渚清沙白鳥飛迴無邊落木蕭蕭下不盡長江滾滾來"
            "萬里悲秋常作客百年多病獨登臺艱難苦恨繁霜鬢潦倒新停濁酒杯")  # 杜甫, 七律 仄起首句入韵
CHUN_XIAO = "春眠不覺曉處處聞啼鳥夜來風雨聲花落知多少"  # 孟浩然: an ancient-style quatrain rhyming on oblique tones


@pytest.fixture(scope="module")
def quatrain():
    return vaekit.load("quatrain")


def test_the_rhyme_book_keeps_the_entering_tone():
    book = pingshui()
    assert len(book.members) == 106 and sum(t == "平" for t in book.group_tone.values()) == 30
    for char in "白得石出獨竹發別十":  # level in modern pinyin, oblique (入声) in Tang verse
        assert tones(char) == {"仄"}, char
    assert tones("光") == {"平"} and tones("看") == {"平", "仄"}  # 看 is a polyphone: it fits either
    assert rhyme_groups("光") == {"下平聲七陽"}


@pytest.mark.parametrize(("poem", "form", "template"), [
    (DENG_GUAN_QUE_LOU, "quatrain", "仄起首句不入韵"),
    (ZAO_FA_BAI_DI, "quatrain7", "平起首句入韵"),
    (DENG_GAO, "regulated7", "仄起首句入韵"),
])
def test_famous_regulated_poems_fit_their_known_templates(poem, form, template):
    verdict = check(poem, form)
    assert verdict.fits, [str(b) for b in verdict.breaks]
    assert verdict.template.name == template


def test_an_ancient_style_poem_with_oblique_rhymes_breaks_the_template():
    verdict = check(CHUN_XIAO)
    assert not verdict.fits and not verdict.rhymes


def test_gu_ping_and_three_level_tail_are_found():
    gu_ping = DENG_GUAN_QUE_LOU.replace("黃河入海流", "白河入海流")  # 平平仄仄平 with the first level turned oblique
    assert any(b.rule.startswith("孤平") and b.line == 1 for b in check(gu_ping).breaks)
    tail = DENG_GUAN_QUE_LOU.replace("更上一層樓", "更上千層樓")  # 仄仄仄平平 ending in three level tones
    assert any(b.rule.startswith("三平尾") and b.line == 3 for b in check(tail).breaks)


def test_templates_of_every_form():
    for form, lines, chars in (("quatrain", 4, 5), ("quatrain7", 4, 7), ("regulated", 8, 5), ("regulated7", 8, 7),
                               ("couplet", 2, 5)):
        found = templates(form)
        assert len(found) == 4 and all(len(t.lines) == lines and t.chars == chars for t in found)
    seven = {t.name: t.lines for t in templates("quatrain7")}
    assert seven["平起首句入韵"] == ("平平仄仄仄平平", "仄仄平平仄仄平", "仄仄平平平仄仄", "平平仄仄仄平平")


def _assert_keeps_the_rules(text: str, form: str) -> None:
    verdict = check(text, form)
    assert verdict.fits, (text, [str(b) for b in verdict.breaks])
    assert not has_doubled_character(text) and UNK not in text
    assert max(Counter(text).values()) <= 2, text  # the default max_uses


def test_constrained_quatrains_never_break_a_rule_over_many_seeds(quatrain):
    poems = write(quatrain, 200, seed=11, temperature=0.7, top_p=0.9, rules=VerseRules("quatrain"))
    for text in poems:
        _assert_keeps_the_rules(text, "quatrain")
    assert len({check(t).template.name for t in poems}) >= 3  # auto draws several templates


def test_interpolation_keeps_the_rules_at_every_point_each_under_the_template_its_free_decoding_fits(quatrain):
    ends = write(quatrain, 16, seed=5, temperature=0.85, top_p=0.95, rules=VerseRules("quatrain"))
    moved = 0
    for i, (a, b) in enumerate(zip(ends[::2], ends[1::2], strict=True)):
        path = interpolate(quatrain, a, b, steps=5, rules=VerseRules("quatrain"), seed=i)
        free = interpolate(quatrain, a, b, steps=5, seed=i)
        for text, guide in zip(path, free, strict=True):
            _assert_keeps_the_rules(text, "quatrain")
            fewest = _fewest_breaks(guide)  # the templates the point's free decoding breaks least: it keeps one
            assert any(check(text, template=name).fits for name in fewest), (text, guide, fewest)
        moved += path[0] != path[-1]
    assert moved >= 6  # the ends of most lines decode to different poems


def _fewest_breaks(text: str) -> list[str]:
    """Names of the quatrain templates under which `text` breaks the fewest rules."""
    counts = {t.name: len(check(text, template=t.name).breaks) for t in templates("quatrain")}
    return [name for name, n in counts.items() if n == min(counts.values())]


def test_a_plan_guided_by_a_poem_takes_a_template_and_rhyme_group_the_poem_keeps(quatrain):
    from vaekit.poetry.decode import _plan

    poems = write(quatrain, 60, seed=3, temperature=0.85, top_p=0.95, rules=VerseRules("quatrain"))
    generator = torch.Generator().manual_seed(0)
    for text in poems:  # each keeps some template and rhymes: the plan it guides keeps them
        plan = _plan(VerseRules("quatrain"), quatrain.vocab, generator, guide=text)
        assert check(text, template=plan.template.name).fits, (text, plan.template.name)
        assert plan.groups and all(plan.groups <= rhyme_groups(text[q]) for q in plan.rhyme_positions), text
    drawn = {_plan(VerseRules("quatrain"), quatrain.vocab, generator).template.name for _ in range(40)}
    assert len(drawn) >= 3  # unguided, the template is drawn as before
    with pytest.raises(ValueError, match="quatrain has 20 characters"):
        _plan(VerseRules("quatrain"), quatrain.vocab, generator, guide=DENG_GUAN_QUE_LOU[:10])
    with pytest.raises(ValueError, match="2 guides"):
        decode(quatrain, 3, VerseRules("quatrain"), guides=poems[:2])


def test_acrostic_first_line_and_keywords_over_many_seeds(quatrain):
    rng = random.Random(0)
    frequent = quatrain.vocab.chars[1:200]
    for seed in range(60):
        heads = "".join(rng.sample(frequent, 4))
        text = write(quatrain, 1, seed=seed, temperature=0.7, rules=VerseRules("quatrain", acrostic=heads))[0]
        assert [line[0] for line in lines_of_text(text)] == list(heads)
        _assert_keeps_the_rules(text, "quatrain")
    for seed in range(60):
        text = write(quatrain, 1, seed=seed, rules=VerseRules("quatrain", first_line="白日依山盡"), temperature=0.7)[0]
        assert text.startswith("白日依山盡")
        _assert_keeps_the_rules(text, "quatrain")
        text = write(quatrain, 1, seed=seed, rules=VerseRules("quatrain", keywords=("月", "山")), temperature=0.7)[0]
        assert "月" in text and "山" in text
        _assert_keeps_the_rules(text, "quatrain")


def _favouring(model, monkeypatch, char: str, bonus: float = 10.0) -> None:
    """Make the model's step decoder love one character, so only the repetition rules keep it from every slot."""
    step_decoder, token = model.step_decoder, model.vocab.index[char]

    def biased(*args):
        step = step_decoder(*args)
        return lambda prefix: step(prefix).index_add(1, torch.tensor([token]), torch.full((len(prefix), 1), bonus))

    monkeypatch.setattr(model, "step_decoder", biased)


def test_the_repetition_rules_hold_against_a_model_that_loves_one_character(quatrain, monkeypatch):
    _favouring(quatrain, monkeypatch, "看")  # a polyphone: level or oblique, it fits any position's tone
    kw = {"seed": 3, "temperature": 0.85, "top_p": 0.95}
    unruled = write(quatrain, 20, rules=VerseRules("quatrain", max_uses=None), repeat_penalty=0.0, **kw)
    assert min(t.count("看") for t in unruled) >= 4  # nothing else stops it
    for max_uses in (1, 2, 3):
        poems = write(quatrain, 20, rules=VerseRules("quatrain", max_uses=max_uses), repeat_penalty=0.0, **kw)
        assert all(t.count("看") == max_uses for t in poems), (max_uses, poems)
        assert all(max(Counter(t).values()) <= max_uses for t in poems)
    penalised = write(quatrain, 20, rules=VerseRules("quatrain", max_uses=None), repeat_penalty=30.0, **kw)
    assert all(t.count("看") == 1 for t in penalised), penalised  # the bonus is spent once, then 20 nats behind
    beams = write(quatrain, 3, seed=3, beam=4, rules=VerseRules("quatrain"), repeat_penalty=30.0)
    assert all(t.count("看") == 1 for t in beams), beams
    # a character fixed later (an acrostic head) counts as used from the start
    for max_uses, penalty in ((1, 0.0), (None, 30.0)):
        heads = write(quatrain, 10, rules=VerseRules("quatrain", acrostic="春夏秋看", max_uses=max_uses),
                      repeat_penalty=penalty, **kw)
        assert all(t.count("看") == 1 and t[15] == "看" for t in heads), heads


def test_the_default_penalty_writes_fewer_repeats_than_none(quatrain):
    from vaekit.poetry.metrics import repetition

    kw = {"seed": 0, "temperature": 0.85, "top_p": 0.95, "rules": VerseRules("quatrain")}
    plain, default = write(quatrain, 300, repeat_penalty=0.0, **kw), write(quatrain, 300, **kw)
    assert repetition(default)["repeats_per_poem"] < 0.7 * repetition(plain)["repeats_per_poem"]
    with pytest.raises(ValueError, match="repeat_penalty"):
        write(quatrain, 1, seed=0, rules=VerseRules("quatrain"), repeat_penalty=-1.0)
    with pytest.raises(ValueError, match="max_uses"):
        write(quatrain, 1, seed=0, rules=VerseRules("quatrain", max_uses=0))


def test_beam_search_and_a_named_rhyme_keep_the_rules(quatrain):
    for text in write(quatrain, 5, seed=2, beam=4, rules=VerseRules("quatrain", rhyme="七陽")):
        _assert_keeps_the_rules(text, "quatrain")
        assert all("下平聲七陽" in rhyme_groups(line[-1]) for line in lines_of_text(text)[1::2])


def test_no_line_is_copied_from_the_training_lines(quatrain):
    rules = VerseRules("quatrain")
    first = decode(quatrain, 20, rules, temperature=0, generator=torch.Generator().manual_seed(5))
    banned = LineSet.from_lines([line for t in first for line in lines_of_text(t)])
    again = decode(quatrain, 20, rules, temperature=0, generator=torch.Generator().manual_seed(5), lines=banned)
    assert all(line not in banned for t in again for line in lines_of_text(t))
    assert again != first


def test_best_of_keeps_the_candidate_the_model_scores_highest(quatrain):
    rules = VerseRules("quatrain")
    candidates = write(quatrain, 6, seed=9, temperature=0.7, rules=rules)
    scores = poem_scores(quatrain, candidates)
    # a poem's score is its own: alone or beside others, whatever the random stream
    assert poem_scores(quatrain, candidates[2:3]) == pytest.approx(scores[2:3], abs=1e-3)
    expected = [max(candidates[i:i + 3], key=lambda t: scores[candidates.index(t)]) for i in (0, 3)]
    assert write(quatrain, 2, seed=9, temperature=0.7, rules=rules, best_of=3) == expected


@pytest.mark.parametrize(("rules", "message"), [
    (VerseRules("quatrain", acrostic="春夏秋"), "needs 4 characters"),
    (VerseRules("quatrain", acrostic="春夏秋\U0002a6a5"), "is not among the"),
    (VerseRules("quatrain", rhyme="月"), "no level-tone rhyme group"),
    (VerseRules("quatrain", template="平起首句"), None),
    (VerseRules("quatrain", template="律"), "no quatrain template"),
])
def test_rules_that_cannot_be_kept_say_so(quatrain, rules, message):
    if message is None:
        assert all("平" in tones(t[1]) for t in write(quatrain, 5, seed=0, rules=rules))  # 平起: a level 2nd char
        return
    with pytest.raises(ConstraintError, match=message):
        write(quatrain, 1, seed=0, rules=rules)


def test_a_vocabulary_too_small_to_rhyme_says_so():
    from vaekit.data.poetry import Vocabulary
    from vaekit.poetry.model import PoemVAE

    vocab = Vocabulary.build([CHUN_XIAO, DENG_GUAN_QUE_LOU])
    model = PoemVAE.build(len(vocab), latent_dim=4, embedding_dim=8).eval()
    model.vocab = vocab
    with pytest.raises(ConstraintError, match="too few characters"):
        write(model, 1, seed=0, rules=VerseRules("quatrain", rhyme="七陽"))


def test_simplified_output_is_the_traditional_poem_converted(capsys):
    assert main(["poem", "write", "-n", "3", "--seed", "4"]) == 0
    traditional = capsys.readouterr().out
    assert main(["poem", "write", "-n", "3", "--seed", "4", "--simplified"]) == 0
    assert capsys.readouterr().out == to_simplified([traditional])[0]


def test_the_default_write_keeps_the_rules_and_free_does_not_have_to(capsys):
    assert main(["poem", "write", "-n", "20", "--seed", "1"]) == 0
    poems = ["".join(c for c in p if c not in "，。\n") for p in capsys.readouterr().out.strip().split("\n\n")]
    assert len(poems) == 20
    for text in poems:
        _assert_keeps_the_rules(text, "quatrain")
    assert main(["poem", "write", "-n", "50", "--seed", "1", "--free"]) == 0
    free = ["".join(c for c in p if c not in "，。\n") for p in capsys.readouterr().out.strip().split("\n\n")]
    assert sum(check(t).fits for t in free) < 40


def test_check_against_a_named_template():
    poem = DENG_GUAN_QUE_LOU
    assert check(poem).template.name == "仄起首句不入韵" and check(poem).fits
    against = check(poem, template="平起首句不入韵")
    assert against.template.name == "平起首句不入韵" and not against.fits and against.breaks
    with pytest.raises(ValueError, match="no quatrain template"):
        check(poem, template="平起")


def test_check_reads_a_poem_as_printed_and_names_the_lengths_it_knows():
    poem = DENG_GUAN_QUE_LOU
    printed = "\n".join(f"{line}{'，' if i % 2 == 0 else '。'}" for i, line in enumerate(lines_of_text(poem)))
    assert check(printed) == check(poem)
    broken = poem[:-1] + "山"  # the last rhyme character changed: the verdict must see it through the punctuation
    assert check(broken).breaks and check(broken.replace(poem[:5], poem[:5] + "，")).breaks == check(broken).breaks
    with pytest.raises(ValueError, match="fits no form.*quatrain 20"):
        check(poem[:7])


def test_the_ends_of_the_path_are_the_given_poems_told_back(quatrain, capsys):
    from vaekit.poetry import kept_in_place, reconstruct

    ends = write(quatrain, 8, seed=9, rules=VerseRules("quatrain"))
    for i, (a, b) in enumerate(zip(ends[::2], ends[1::2], strict=True)):
        rules = VerseRules("quatrain")
        path = interpolate(quatrain, a, b, steps=4, rules=rules, seed=i)
        assert path[0] == reconstruct(quatrain, a, rules=rules, seed=i)
        assert path[-1] == reconstruct(quatrain, b, rules=rules, seed=i)
        assert check(path[0]).fits and 0 <= kept_in_place(a, path[0]) <= 1
    free = reconstruct(quatrain, DENG_GUAN_QUE_LOU)
    assert free == interpolate(quatrain, DENG_GUAN_QUE_LOU, CHUN_XIAO, steps=3)[0]
    assert kept_in_place(DENG_GUAN_QUE_LOU, DENG_GUAN_QUE_LOU) == 1.0
    assert kept_in_place("白日依山盡，黃河入海流。欲窮千里目，更上一層樓。", "黑" + DENG_GUAN_QUE_LOU[1:]) == 19 / 20
    assert main(["poem", "reconstruct", DENG_GUAN_QUE_LOU, "--free"]) == 0  # told back by the recall model
    out = capsys.readouterr().out
    told = reconstruct(vaekit.load("quatrain-recall"), DENG_GUAN_QUE_LOU)
    assert out.splitlines()[0] == told[:5] + "，" and f"({kept_in_place(DENG_GUAN_QUE_LOU, told):.0%} of the" in out
