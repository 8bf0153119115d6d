"""Does a CVAE draw the class it is asked for? The default CVAE recipe, both conditioning schemes, on MNIST
and Fashion-MNIST, each trained for a fixed CPU budget, scored by the shipped classifier.

    python benchmarks/cvae.py [--minutes 10] [--threads 1]

Conditional accuracy: the share of samples drawn with `sample(label=y)` that the shipped classifier reads
as y (500 per class). Runs two at a time with one thread each, so each gets one core for --minutes.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from common import RESULTS, machine, write_result

ONE = """
import json, sys, torch
torch.set_num_threads({threads})
from vaekit.classifier import conditional_accuracy, load_classifier
from vaekit.config import TrainConfig
from vaekit.train import Trainer
cfg = TrainConfig.from_flat(run_dir={run!r}, model="cvae", conditioning={cond!r}, dataset={dataset!r}, epochs=100,
                  max_minutes={minutes}, device="cpu", tensorboard=False)
trainer = Trainer(cfg, log=lambda m: None)
last = trainer.fit()
acc = conditional_accuracy(load_classifier({dataset!r}), trainer.model.eval(), per_class=500)
print(json.dumps({{"dataset": {dataset!r}, "conditioning": {cond!r}, "conditional_accuracy": acc, "beta": cfg.model.beta,
                  "epochs": last["epoch"], "train_seconds": last["train_seconds"], "valid_elbo": last["valid_elbo"],
                  "valid_kl": last["valid_kl"], "latent_dim": cfg.model.latent_dim, "arch": cfg.model.arch,
                  "likelihood": cfg.model.likelihood, "norm": cfg.model.norm}}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--datasets", default="mnist,fashion-mnist")
    parser.add_argument("--conditionings", default="input,prior,both")
    parser.add_argument("--update", action="store_true",
                        help="keep the rows of the other datasets in results/cvae-cpu.json (their defaults unchanged)")
    args = parser.parse_args()
    cases = [(d, c) for d in args.datasets.split(",") for c in args.conditionings.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for pair in (cases[i:i + 2] for i in range(0, len(cases), 2)):
            procs = [subprocess.Popen([sys.executable, "-c", ONE.format(threads=args.threads, minutes=args.minutes,
                                                                        run=str(Path(tmp) / f"{d}-{c}"), cond=c,
                                                                        dataset=d)],
                                      stdout=subprocess.PIPE, text=True) for d, c in pair]
            for proc in procs:
                out, _ = proc.communicate()
                row = json.loads(out.strip().splitlines()[-1])
                rows.append(row)
                print(json.dumps(row))
    command = (f"python benchmarks/cvae.py --minutes {args.minutes:g} --datasets {args.datasets} "
               f"--conditionings {args.conditionings}")
    previous = RESULTS / "cvae-cpu.json"
    if args.update and previous.is_file():
        old = json.loads(previous.read_text())
        ours = set(args.datasets.split(","))
        kept = [dict(r, measured=r.get("measured", old["machine"]["date"])) for r in old["rows"]
                if r["dataset"] not in ours]
        rows = kept + [dict(r, measured=machine()["date"]) for r in rows]
        command = f"{old['command']}; then {command} --update"
    write_result("cvae-cpu", {"machine": machine(), "minutes": args.minutes, "threads_per_run": args.threads,
                              "rows": rows, "command": command})


if __name__ == "__main__":
    main()
