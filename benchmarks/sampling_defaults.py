"""The poem sampling default, chosen by measurement: temperature x top-p x best-of against fluency and diversity.

    python benchmarks/sampling_defaults.py [-n 500] [--temperatures 0.5,0.6,0.7,0.8,0.85] [--top-ps 0.8,0.9,0.95]
                                          [--best-of 1,4]

Poems written by the shipped five-character quatrain model with the rules kept at each setting, scored beside
the held-out Tang quatrains of its split: fluency, the perplexity of a 3-gram Kneser-Ney judge fitted on the
model's training stanzas (`benchmarks/ngram.py`) as a ratio to the held-out poems' (1: as fluent as Tang verse by
the judge; below 1, stock phrases the judge has seen often), distinct-2, repeats per poem and copied lines.
The rule that picks the default (`decode.SAMPLING`, which the library, the command line and the page share): of
the settings whose fluency ratio is at most 1.1, whose distinct-2 is at least Tang's and whose repeats are at most
Tang's, the one with the highest distinct-2 (the most varied that is still fluent), preferring best-of 1 (4x
cheaper) when it qualifies.
"""

from __future__ import annotations

import argparse
import itertools
import random
import time

import vaekit
from common import machine, write_result
from ngram import KneserNey, perplexity
from vaekit.data.poetry import UNK
from vaekit.poetry import SAMPLING, VerseRules, write
from vaekit.poetry.decode import LineSet
from vaekit.poetry.metrics import verse_metrics
from vaekit.poetry.task import split_items
from vaekit.poetry.verse import lines_of_text

FLUENCY_LIMIT = 1.1


def qualifies(row: dict, tang: dict) -> bool:
    """Fluent by the judge, and at least as varied and no more repetitive than the held-out Tang poems."""
    return (row["fluency_ratio"] <= FLUENCY_LIMIT and row["distinct_2"] >= tang["distinct_2"]
            and row["repeats_per_poem"] <= tang["repeats_per_poem"] and not row["copied_lines"])


def choose(rows: list[dict], tang: dict) -> dict | None:
    """The default by the rule in the module docstring (None when no setting qualifies)."""
    good = [r for r in rows if qualifies(r, tang)]
    cheap = [r for r in good if r["best_of"] == 1] or good
    return max(cheap, key=lambda r: r["distinct_2"], default=None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=500)
    parser.add_argument("--temperatures", default="0.5,0.6,0.7,0.8,0.85")
    parser.add_argument("--top-ps", default="0.8,0.9,0.95")
    parser.add_argument("--best-of", default="1,4")
    parser.add_argument("--order", type=int, default=3)
    args = parser.parse_args()
    model = vaekit.load("quatrain")
    start = time.perf_counter()
    train_items, held_items = split_items(model.run_config)
    known = set(model.vocab.chars)
    judge = KneserNey([[c if c in known else UNK for c in t] for t, _ in train_items], args.order, model.vocab.chars)
    held = random.Random(0).sample([t for t, _ in held_items], min(args.n, len(held_items)))
    held_ppl = perplexity(judge, [[c if c in known else UNK for c in t] for t in held])
    lines = LineSet.from_lines([line for t, _ in train_items for line in lines_of_text(t)])
    keys = ("distinct_2", "repeats_per_poem", "copied_lines", "template_fit")
    tang = {k: verse_metrics(held, lines)[k] for k in keys}
    rows = []
    grid = itertools.product((float(t) for t in args.temperatures.split(",")),
                             (float(p) for p in args.top_ps.split(",")), (int(b) for b in args.best_of.split(",")))
    for temperature, top_p, best_of in grid:
        texts = write(model, args.n, seed=0, temperature=temperature, top_p=top_p, best_of=best_of,
                      rules=VerseRules("quatrain"))
        m = verse_metrics(texts, lines)
        row = {"temperature": temperature, "top_p": top_p, "best_of": best_of,
               "fluency_ratio": perplexity(judge, [list(t) for t in texts]) / held_ppl, **{k: m[k] for k in keys}}
        rows.append(row)
        print(row, flush=True)
    chosen = choose(rows, tang)
    print("chosen:", chosen, "current:", SAMPLING)
    write_result("sampling_defaults", {
        "rows": rows, "tang": {"poems": len(held), **tang}, "chosen": chosen, "fluency_limit": FLUENCY_LIMIT,
        "default": {"temperature": SAMPLING.temperature, "top_p": SAMPLING.top_p, "best_of": SAMPLING.best_of},
        "judge_order": args.order, "poems": args.n, "seconds": time.perf_counter() - start, "machine": machine(),
        "command": f"python benchmarks/sampling_defaults.py -n {args.n} --temperatures {args.temperatures} "
                   f"--top-ps {args.top_ps} --best-of {args.best_of}"})


if __name__ == "__main__":
    main()
