"""Poem metrics of the shipped models (argmax and the default temperature), and optionally of other runs.

    python benchmarks/poems.py --corpus DIR [--anchor RUN_DIR]

--anchor scores a run trained with Su Jianlin's exact setup (see docs/benchmarks.md) beside the shipped
couplet model. Needs the corpus (`vaekit poem fetch`).
"""

from __future__ import annotations

import argparse
import json

from common import RESULTS, write_result
from vaekit.poetry import load_poem_model
from vaekit.poetry.evaluate import evaluate_poems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", default=None)
    parser.add_argument("--anchor", default=None, help="run dir of Su's exact couplet setup")
    parser.add_argument("-n", type=int, default=1000)
    args = parser.parse_args()
    rows = []
    cases = [("quatrain", None, 0.0), ("quatrain", None, 0.5), ("couplet", None, 0.0), ("couplet", None, 0.5)]
    if args.anchor:
        cases += [("couplet", args.anchor, 0.0), ("couplet", args.anchor, 0.5)]
    for form, run, temperature in cases:
        model = load_poem_model(form, run)
        result = evaluate_poems(model, args.corpus, n=args.n, temperature=temperature)
        result["model"] = "Su's setup (12 epochs)" if run else "shipped"
        rows.append(result)
        print(json.dumps({k: result[k] for k in ("form", "model", "temperature", "distinct_2", "tone_fit")}))
    write_result("poems", {"rows": rows, "corpus": "npm chinese-poetry@2.0.1"})
    assert (RESULTS / "poems.json").is_file()


if __name__ == "__main__":
    main()
