"""Ci written to each shipped tune by the shipped ci model, beside held-out Song ci of the same tunes.

    python benchmarks/ci.py [-n 20] [--run DIR]

For every tune: n ci at the default sampling with the tune's rules kept (and n without them), scored as the verse
forms are: the share keeping the tune (lengths, the tone at each fixed place, rhymes: `tunes.check_ci`), fluency
(the perplexity of a 3-gram Kneser-Ney judge fitted on the model's training ci, `benchmarks/ngram.py`, as a ratio
to its perplexity on the held-out ci of the same tunes), distinct-2, lines of four or more characters copied from
the training ci, and characters repeated in a ci; the same for the held-out ci.
"""

from __future__ import annotations

import argparse
import time

import vaekit
from common import machine, write_result
from ngram import KneserNey, perplexity
from vaekit.data.poetry import UNK
from vaekit.poetry import SAMPLING
from vaekit.poetry.ci import ci_metrics, write_ci
from vaekit.poetry.task import item_lines, split_items
from vaekit.poetry.tunes import tunes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=20, help="ci a tune, each way")
    parser.add_argument("--order", type=int, default=3)
    parser.add_argument("--run", default=None, help="a run directory instead of the shipped ci model")
    args = parser.parse_args()
    model = vaekit.load(args.run or "ci")
    start = time.perf_counter()
    train_items, held_items = split_items(model.run_config)
    shipped = tunes()
    known = set(model.vocab.chars)

    def chars(items: list[tuple[str, int]]) -> list[list[str]]:
        return [[c if c in known else UNK for c in t[:shipped[k].chars]] for t, k in items]

    judge = KneserNey(chars(train_items), args.order, model.vocab.chars)
    train_lines = set(item_lines(model.run_config, train_items))
    held_ppl = perplexity(judge, chars(held_items))
    written, free = [], []
    seconds = time.perf_counter()
    for k, tune in enumerate(shipped):
        written += [(t, k) for t in write_ci(model, tune, args.n, seed=k)]
        free += [(t, k) for t in write_ci(model, tune, args.n, seed=k, rules=False)]
    seconds = time.perf_counter() - seconds
    rows = [{"ci": "rules kept", "count": len(written), "fluency_ratio": perplexity(judge, chars(written)) / held_ppl,
             **ci_metrics(written, train_lines)},
            {"ci": "free (length and no copying only)", "count": len(free),
             "fluency_ratio": perplexity(judge, chars(free)) / held_ppl, **ci_metrics(free, train_lines)},
            {"ci": "Song ci (held out)", "count": len(held_items), "fluency_ratio": 1.0,
             **ci_metrics(held_items, train_lines)}]
    for row in rows:
        print(row, flush=True)
    write_result("ci", {"rows": rows, "tunes": len(shipped), "per_tune": args.n, "train_ci": len(train_items),
                        "held_out_ci": len(held_items), "judge_order": args.order, "held_out_perplexity": held_ppl,
                        "write_seconds": seconds, "seconds": time.perf_counter() - start,
                        "sampling": {"temperature": SAMPLING.temperature, "top_p": SAMPLING.top_p,
                                     "repeat_penalty": SAMPLING.repeat_penalty},
                        "machine": machine(), "command": f"python benchmarks/ci.py -n {args.n}"})


if __name__ == "__main__":
    main()
