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

from common import machine, write_result

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
                  "valid_kl": last["valid_kl"], "latent_dim": cfg.model.latent_dim, "arch": cfg.model.arch}}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    cases = [(d, c) for d in ("mnist", "fashion-mnist") for c in ("input", "prior")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for pair in (cases[:2], cases[2:]):
            procs = [subprocess.Popen([sys.executable, "-c", ONE.format(threads=args.threads, minutes=args.minutes,
                                                                        run=str(Path(tmp) / f"{d}-{c}"), cond=c,
                                                                        dataset=d)],
                                      stdout=subprocess.PIPE, text=True) for d, c in pair]
            for proc in procs:
                out, _ = proc.communicate()
                row = json.loads(out.strip().splitlines()[-1])
                rows.append(row)
                print(json.dumps(row))
    write_result("cvae-cpu", {"machine": machine(), "minutes": args.minutes, "threads_per_run": args.threads,
                              "rows": rows, "command": f"python benchmarks/cvae.py --minutes {args.minutes:g}"})


if __name__ == "__main__":
    main()
