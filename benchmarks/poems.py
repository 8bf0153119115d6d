"""Poem metrics of the shipped models: the rules of verse kept by constrained decoding, free decoding, and
held-out Tang poems measured the same way, by `vaekit.poetry.evaluate.evaluate_poems`.

    python benchmarks/poems.py [--corpus DIR] [-n 1000]

Needs the corpus (`vaekit poem fetch`). Also refreshes each shipped model's metrics.json.
"""

from __future__ import annotations

import argparse
import json
import time

from common import RESULTS, write_result
from vaekit.poetry import load_poem_model, shipped_model_dir
from vaekit.poetry.evaluate import evaluate_poems
from vaekit.runs import atomic_write_text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", default=None)
    parser.add_argument("-n", type=int, default=1000)
    parser.add_argument("--forms", default="quatrain,quatrain7,couplet")
    args = parser.parse_args()
    rows = []
    for form in args.forms.split(","):
        if not (shipped_model_dir(form) / "model.safetensors").is_file():
            continue
        model = load_poem_model(form)
        start = time.perf_counter()
        result = evaluate_poems(model, args.corpus, n=args.n)
        result["seconds"] = time.perf_counter() - start
        result["model"] = "shipped"
        rows.append(result)
        atomic_write_text(shipped_model_dir(form) / "metrics.json", json.dumps(result, indent=2, ensure_ascii=False))
        print(json.dumps({"form": form, **result["constrained"]}, ensure_ascii=False))
    write_result("poems", {"rows": rows, "corpus": "npm chinese-poetry@2.0.1",
                           "command": f"python benchmarks/poems.py -n {args.n}"})
    assert (RESULTS / "poems.json").is_file()


if __name__ == "__main__":
    main()
