"""Repeated characters in written poems: the shipped models under the repetition penalty and the three-uses
ban, beside held-out Tang poems, so the default can be chosen against the poets rather than by taste.

    python benchmarks/poem_repeats.py [-n 1000] [--penalties 0,0.5,1,1.5,2,3] [--forms quatrain,quatrain7,couplet]

Each setting writes n poems with the rules kept (the default `vaekit poem write`: temperature 0.85, top-p
0.95, seed 0) and reports how often a character recurs anywhere in the poem, distinct-1/2, and the model's
own score of what it wrote (nats per character: `vaekit.poetry.poem_scores`, the price the penalty pays
in the model's eyes). Needs the corpus (`vaekit poem fetch`).
"""

from __future__ import annotations

import argparse
import random
import time

import vaekit
from common import keep_other_rows, write_result
from vaekit.poetry import DEFAULT_TEMPERATURE, DEFAULT_TOP_P, VerseRules, poem_scores, write
from vaekit.poetry.decode import DEFAULT_REPEAT_PENALTY
from vaekit.poetry.metrics import distinct_n, repetition, template_fit_share
from vaekit.poetry.task import split_items


def measure(texts: list[str]) -> dict[str, float]:
    """Repetition and diversity of a set of poems, and the share keeping every rule of a template."""
    return {**repetition(texts), "distinct_1": distinct_n(texts, 1), "distinct_2": distinct_n(texts, 2),
            "template_fit": template_fit_share(texts)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=1000)
    parser.add_argument("--penalties", default="0,0.5,1,1.5,2,3")
    parser.add_argument("--forms", default="quatrain,quatrain7,couplet")
    args = parser.parse_args()
    penalties = [float(p) for p in args.penalties.split(",")]
    rows = []
    for form in args.forms.split(","):
        model = vaekit.load(form)
        _, held = split_items(model.run_config)
        tang = random.Random(0).sample([t for t, _ in held], min(args.n, len(held)))
        rows.append({"form": form, "setting": "Tang poems (held out)", **measure(tang),
                     "score_per_char": sum(poem_scores(model, tang)) / len(tang) / model.length})
        settings = [("no ban", None, 0.0)] + [("ban", 2, p) for p in penalties]
        for ban, max_uses, penalty in settings:
            start = time.perf_counter()
            texts = write(model, args.n, seed=0, temperature=DEFAULT_TEMPERATURE, top_p=DEFAULT_TOP_P,
                          rules=VerseRules(form=form, max_uses=max_uses), repeat_penalty=penalty)
            row = {"form": form, "setting": ban, "max_uses": max_uses, "repeat_penalty": penalty,
                   **measure(texts), "score_per_char": sum(poem_scores(model, texts)) / len(texts) / model.length,
                   "seconds": time.perf_counter() - start, "examples": texts[:2]}
            rows.append(row)
            print({k: v for k, v in row.items() if k != "examples"}, flush=True)
    rows = keep_other_rows("poem_repeats", rows, lambda r: r["form"])
    write_result("poem_repeats", {"rows": rows, "poems": args.n, "temperature": DEFAULT_TEMPERATURE,
                                  "top_p": DEFAULT_TOP_P, "default_penalty": DEFAULT_REPEAT_PENALTY,
                                  "command": f"python benchmarks/poem_repeats.py -n {args.n} --penalties "
                                             f"{args.penalties} --forms {','.join(dict.fromkeys(r['form'] for r in rows))}"})


if __name__ == "__main__":
    main()
