"""Copy a trained poem run into the package as a shipped model, with TRAINED.json saying how it was trained.

    python scripts/ship_poem_model.py runs/ship-quatrain quatrain --command "vaekit poem train ..." \
        --device "CPU, 2 threads" [--themed | --recall] [--notes "..."] [--wall-seconds 1500]

Only what loading needs is copied (config, weights, vocabulary, training-line hashes); checkpoints, metrics
and TensorBoard logs stay in the run. Weights are stored in float16 (loading casts them back to float32), which
halves the package: the shipped models' metrics in docs/benchmarks.md are measured on these rounded weights.
"""

import argparse
import datetime
import filecmp
import json
import shutil
from pathlib import Path

from safetensors.torch import load_file, save_file

from vaekit.config import TrainConfig
from vaekit.poetry import LINES_FILE, shipped_model_dir
from vaekit.runs import read_metrics_lines, read_run_config

FILES = ("vocab.json", "lines.safetensors")

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("run")
    parser.add_argument("form")
    parser.add_argument("--themed", action="store_true")
    parser.add_argument("--recall", action="store_true", help="the model that tells the form's poems back")
    parser.add_argument("--command", required=True)
    parser.add_argument("--device", required=True)
    parser.add_argument("--notes", default="")
    parser.add_argument("--wall-seconds", type=float, default=None, help="the whole command, start-up included")
    args = parser.parse_args()
    run, out = Path(args.run), shipped_model_dir(args.form, args.themed, args.recall)
    lines_before = (out / LINES_FILE).read_bytes() if (out / LINES_FILE).is_file() else None
    config = TrainConfig.from_dict(read_run_config(run))
    config.run.run_dir = f"shipped/{out.name}"
    metrics = read_metrics_lines(run / "metrics.jsonl")
    last = metrics[-1]
    out.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        shutil.copyfile(run / name, out / name)
    # the themed CVAE, the recall model and their form's model train on the same stanzas: their training-line hashes
    # ship once, beside the form's model, and the others read them there (vaekit.load)
    plain, themed = shipped_model_dir(args.form) / LINES_FILE, shipped_model_dir(args.form, True) / LINES_FILE
    variant = args.themed or args.recall
    if variant and plain.is_file() and filecmp.cmp(plain, out / LINES_FILE, shallow=False):
        (out / LINES_FILE).unlink()
    elif not variant and themed.parent.is_dir() and not themed.is_file() and lines_before is not None \
            and lines_before != plain.read_bytes():
        themed.write_bytes(lines_before)  # the themed model's lines differ from the new ones: it keeps its own
    weights = load_file(str(run / "model.safetensors"))
    save_file({k: v.half() if v.is_floating_point() else v for k, v in weights.items()}, str(out / "model.safetensors"))
    (out / "config.json").write_text(json.dumps(config.to_dict(), indent=2) + "\n")
    corpus = ("npm chinese-poetry@2.0.1, dist/songci (simplified characters), the shipped tunes"
              if config.poem.form == "ci" else
              "npm chinese-poetry@2.0.1, dist/quantangshi (traditional characters)"
              + (", Tang and Song poems (held out: Tang)" if config.poem.song else ""))
    trained = {"command": args.command, "corpus": corpus,
               "device": args.device, "date": datetime.date.today().isoformat(), "epochs": last["epoch"],
               "train_seconds": last["train_seconds"], "wall_seconds": args.wall_seconds,
               "final": {k: last[k] for k in ("train_loss", "valid_elbo", "valid_log_likelihood", "valid_kl")},
               "notes": args.notes}
    (out / "TRAINED.json").write_text(json.dumps(trained, indent=2, ensure_ascii=False) + "\n")
    print(out, sum(f.stat().st_size for f in out.iterdir()) / 2**20, "MiB")
