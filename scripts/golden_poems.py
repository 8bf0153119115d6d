"""Write tests/fixtures/golden_poems.json: what each shipped poem model writes for fixed seeds and settings.

    python scripts/golden_poems.py

tests/test_golden.py asserts the same calls still write the same poems, so a refactor that changes behaviour is
seen. Rerun this only when a change of the poems is intended (a new shipped model, a new decoding rule), and say
so in the commit.
"""

from __future__ import annotations

import json
from pathlib import Path

import vaekit

FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "golden_poems.json"
PAIR = {"couplet": ["床前明月光疑是地上霜", "舉頭望明月低頭思故鄉"],
        "quatrain": ["床前明月光疑是地上霜舉頭望明月低頭思故鄉", "白日依山盡黃河入海流欲窮千里目更上一層樓"],
        "quatrain7": ["朝辭白帝彩雲間千里江陵一日還兩岸猿聲啼不住輕舟已過萬重山",
                      "故人西辭黃鶴樓煙花三月下揚州孤帆遠影碧空盡唯見長江天際流"]}


def cases() -> list[dict]:
    """The calls whose poems are recorded: each form's defaults, and the settings that take other paths."""
    out = []
    for form in ("quatrain", "quatrain7", "couplet"):
        out += [{"form": form, "n": 4, "seed": 0},
                {"form": form, "n": 2, "seed": 1, "free": True},
                {"form": form, "n": 2, "seed": 2, "beam": 4},
                {"form": form, "n": 2, "seed": 3, "best_of": 3},
                {"form": form, "n": 2, "seed": 4, "temperature": 0.0},
                {"form": form, "interpolate": PAIR[form], "steps": 4}]
    out += [{"form": "quatrain", "n": 2, "seed": 5, "acrostic": "春夏秋冬", "keywords": "月"},
            {"form": "quatrain", "n": 2, "seed": 6, "first_line": "白日依山盡", "rhyme": "none"},
            {"form": "quatrain", "n": 3, "seed": 7, "theme": "autumn"},
            {"form": "regulated", "n": 2, "seed": 8}, {"form": "regulated7", "n": 2, "seed": 9},
            {"form": "regulated", "n": 2, "seed": 10, "parallel": 0.0},
            {"form": "ci", "n": 2, "seed": 11, "tune": "菩萨蛮"}, {"form": "ci", "n": 1, "seed": 12, "tune": "水调歌头"}]
    return out


def run_case(case: dict) -> list[str]:
    """The poems one recorded call writes, through the library as the command line calls it."""
    from vaekit.poetry import DEFAULT_TEMPERATURE, DEFAULT_TOP_P, VerseRules, interpolate, shipped_name, write
    from vaekit.poetry.decode import rules_from_options

    if "interpolate" in case:  # the model `poem interpolate` walks with: the form's recall model where it has one
        model = vaekit.load(shipped_name(case["form"], recall=True))
    else:
        model = vaekit.load(case["form"] + ("-themed" if "theme" in case else ""))
    if "tune" in case:
        from vaekit.poetry.ci import write_ci

        return write_ci(model, case["tune"], case["n"], seed=case["seed"])
    if "interpolate" in case:
        a, b = case["interpolate"]
        return interpolate(model, a, b, steps=case["steps"], rules=VerseRules(form=case["form"]))
    rules = None if case.get("free") else rules_from_options(
        case["form"], template=case.get("template"), rhyme=case.get("rhyme"), acrostic=case.get("acrostic"),
        first_line=case.get("first_line"), keywords=case.get("keywords"), **(
            {"parallel": case["parallel"]} if "parallel" in case else {}))
    return write(model, case["n"], seed=case["seed"], temperature=case.get("temperature", DEFAULT_TEMPERATURE),
                 top_p=DEFAULT_TOP_P, rules=rules, beam=case.get("beam", 0), best_of=case.get("best_of", 1),
                 theme=case.get("theme"))


def main() -> None:
    records = [{"case": case, "poems": run_case(case)} for case in cases()]
    FIXTURE.write_text(json.dumps(records, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {FIXTURE} ({len(records)} calls)")


if __name__ == "__main__":
    main()
