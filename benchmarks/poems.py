"""Poem metrics of the shipped models: the rules of verse kept by constrained decoding, free decoding, and
held-out Tang poems measured the same way, by `vaekit.poetry.evaluate.evaluate_poems`.

    python benchmarks/poems.py [--corpus DIR] [-n 1000] [--forms quatrain,quatrain-recall,...]

Needs the corpus (`vaekit poem fetch`). Also refreshes each shipped model's metrics.json; with --forms only
those forms are measured again and the other forms' rows in results/poems.json stay as they were.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

import vaekit
from common import RESULTS, keep_other_rows, write_result
from vaekit.poetry import DEFAULT_TEMPERATURE, DEFAULT_TOP_P, VerseRules, shipped_dir, write
from vaekit.poetry.evaluate import evaluate_poems
from vaekit.poetry.themes import classifier_dir
from vaekit.runs import atomic_write_text


def generation_speed(model, n: int = 100, repeats: int = 3) -> dict[str, float]:
    """Seconds to write n poems, freely and with the rules kept (best of `repeats`, after one warm-up)."""
    rules = VerseRules(form=model.run_config.poem.form)
    theme = "autumn" if getattr(model, "uses_labels", False) else None
    out = {"poems": n, "threads": torch.get_num_threads()}
    for name, kw in (("free_seconds", {}), ("rules_seconds", {"rules": rules, "top_p": DEFAULT_TOP_P})):
        write(model, 4, seed=0, temperature=DEFAULT_TEMPERATURE, theme=theme, **kw)
        times = []
        for i in range(repeats):
            start = time.perf_counter()
            write(model, n, seed=i, temperature=DEFAULT_TEMPERATURE, theme=theme, **kw)
            times.append(time.perf_counter() - start)
        out[name] = min(times)
    return out


def _name(row: dict) -> str:
    variant = "-themed" if "conditioning" in row else "-recall" if row.get("recall") else ""
    return row["form"] + variant


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", default=None)
    parser.add_argument("-n", type=int, default=1000)
    parser.add_argument("--forms", default="quatrain,quatrain7,couplet,quatrain-themed,quatrain-recall")
    args = parser.parse_args()
    rows, decoders = [], set()
    for name in args.forms.split(","):
        if not (shipped_dir(name) / "model.safetensors").is_file():
            continue
        model = vaekit.load(name)
        start = time.perf_counter()
        result = evaluate_poems(model, args.corpus, n=args.n)
        result["seconds"] = time.perf_counter() - start
        result["model"] = "shipped"
        result["decoder"] = model.run_config.poem.decoder
        if name.endswith("-recall"):  # it tells poems back (`poem reconstruct`, `interpolate`); the form's writes them
            result["recall"] = True
        else:  # a writing model: its speed, and its decoder names the table
            result["generation"] = generation_speed(model)
            decoders.add(model.run_config.poem.decoder)
        if name.endswith("-themed"):
            result["conditioning"] = model.run_config.model.conditioning
            meta = json.loads((classifier_dir() / "classifier.json").read_text(encoding="utf-8"))
            result["themes"]["classifier_held_out"] = meta["held_out"]
        rows.append(result)
        atomic_write_text(shipped_dir(name) / "metrics.json",
                          json.dumps(result, indent=2, ensure_ascii=False))
        print(json.dumps({"form": name, **result["constrained"], **result["fit"]}, ensure_ascii=False))
    rows = keep_other_rows("poems", rows, _name)
    write_result("poems", {"rows": rows, "corpus": "npm chinese-poetry@2.0.1", "decoder": "/".join(sorted(decoders)),
                           "command": f"python benchmarks/poems.py -n {args.n}"})
    assert (RESULTS / "poems.json").is_file()


if __name__ == "__main__":
    main()
