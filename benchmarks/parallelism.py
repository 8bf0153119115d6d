"""Parallelism (對仗) of the regulated-verse models against the decoder's bonus weight, beside held-out Tang poems.

    python benchmarks/parallelism.py [--forms regulated,regulated7] [-n 500] [--weights 0,0.5,1,2,4]

For each shipped eight-line model: poems written at the default sampling with the rules kept, at each weight of
the parallelism bonus (`VerseRules.parallel`), measured by the same association table the bonus uses
(`vaekit.poetry.parallel`, built from Song poems only) on the middle couplets (steered) and the first couplets
(left free), with the share keeping 粘對, distinct-2, and fluency: the perplexity of a 3-gram Kneser-Ney judge
fitted on the model's training poems (`benchmarks/ngram.py`), as a ratio to the judge's perplexity on the held-out
Tang poems. The default weight (`decode.PARALLEL_BONUS`) is chosen from this table: middle couplets at least as
parallel as Tang's, fluency kept.
"""

from __future__ import annotations

import argparse
import random
import time

import vaekit
from common import keep_other_rows, machine, write_result
from ngram import KneserNey, perplexity
from vaekit.data.poetry import UNK
from vaekit.poetry import SAMPLING, VerseRules, write
from vaekit.poetry.decode import LineSet
from vaekit.poetry.metrics import verse_metrics
from vaekit.poetry.task import split_items
from vaekit.poetry.verse import lines_of_text

KEYS = ("parallel_middle", "parallel_first", "nian_dui", "template_fit", "rhyme", "distinct_2", "copied_lines",
        "repeats_per_poem")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--forms", default="regulated,regulated7")
    parser.add_argument("-n", type=int, default=500)
    parser.add_argument("--weights", default="0,0.5,1,2,4")
    parser.add_argument("--order", type=int, default=3)
    parser.add_argument("--run", default=None, help="a run directory instead of the shipped model (one form)")
    args = parser.parse_args()
    rows = []
    for form in args.forms.split(","):
        model = vaekit.load(args.run or form)
        start = time.perf_counter()
        train_items, held_items = split_items(model.run_config)
        known = set(model.vocab.chars)
        train = [[c if c in known else UNK for c in t] for t, _ in train_items]
        held = random.Random(0).sample([t for t, _ in held_items], min(args.n, len(held_items)))
        judge = KneserNey(train, args.order, model.vocab.chars)
        held_ppl = perplexity(judge, [[c if c in known else UNK for c in t] for t in held])
        lines = LineSet.from_lines([line for t, _ in train_items for line in lines_of_text(t)])
        tang = verse_metrics(held, lines)
        rows.append({"form": form, "weight": None, "poems": len(held), "fluency_ratio": 1.0,
                     **{k: tang[k] for k in KEYS}})
        for weight in (float(w) for w in args.weights.split(",")):
            texts = write(model, args.n, seed=0, rules=VerseRules(form=form, parallel=weight))
            m = verse_metrics(texts, lines)
            ratio = perplexity(judge, [list(t) for t in texts]) / held_ppl
            rows.append({"form": form, "weight": weight, "poems": len(texts), "fluency_ratio": ratio,
                         **{k: m[k] for k in KEYS}})
            print(f"{form} weight {weight:g}: middle {m['parallel_middle']:.3f} first {m['parallel_first']:.3f} "
                  f"fluency {ratio:.2f} distinct-2 {m['distinct_2']:.3f}", flush=True)
        print(f"{form} Tang: middle {tang['parallel_middle']:.3f} first {tang['parallel_first']:.3f} "
              f"({time.perf_counter() - start:.0f} s)", flush=True)
    rows = keep_other_rows("parallelism", rows, key=lambda r: r["form"])  # a rerun for one form keeps the other's
    write_result("parallelism", {"rows": rows, "sampling": {"temperature": SAMPLING.temperature,
                                                            "top_p": SAMPLING.top_p},
                                 "judge_order": args.order, "machine": machine(),
                                 "command": f"python benchmarks/parallelism.py --forms {args.forms} -n {args.n} "
                                            f"--weights {args.weights}"})


if __name__ == "__main__":
    main()
