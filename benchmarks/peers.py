"""vaekit side by side with its peers, in one alternating run: training (pytorch/examples' VAE script and Pythae)
and test log-likelihood (Pythae's `get_nll`), on the same machine, model and data.

    python benchmarks/peers.py [--repeats 3] [--k 1000] [--images 200]

The peers are installed by this script into their own environment (benchmarks/.peers-venv: torch pinned by
constraints-ci.txt, pythae from PyPI), never into vaekit's. Training: one epoch of the MLP VAE 784-400-20,
batch 128, Adam 1e-3, grey levels as Bernoulli targets, each tool's whole process timed from launch to exit
(import, data loading, validation, checkpoints and images included), the three tools taking turns within each
repeat so that drift in the machine's speed falls on all of them. Per training image: pytorch/examples trains on
all 60,000 training digits, vaekit and Pythae on 50,000 (10,000 held out for validation).
Likelihood: the weights vaekit trained are loaded into Pythae's VAE (same layers), and both estimate log p(x) of
the same binarized test images with k importance samples: vaekit's `estimate_nll` against Pythae's `get_nll`,
which loops over the images one at a time; the estimates themselves are timed, alternating.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from common import write_result

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PEERS = HERE / "peers"
VENV = HERE / ".peers-venv"
VAEKIT = [str(Path(sys.executable).parent / "vaekit")]  # the console script users type
TRAIN_FLAGS = ["--arch", "mlp", "--hidden", "400", "--latent-dim", "20", "--binarization", "none",
               "--likelihood", "bernoulli", "--batch-size", "128", "--lr", "1e-3", "--weight-decay", "0",
               "--schedule", "constant", "--grad-clip", "0", "--epochs", "1", "--no-tensorboard",
               "--precision", "fp32"]  # the peers multiply in fp32: the same arithmetic, side by side

VAEKIT_NLL = """
import json, sys, time, numpy as np, torch
import vaekit
from vaekit.evaluate import estimate_nll
model = vaekit.load(sys.argv[1])
x = torch.from_numpy(np.load(sys.argv[2])["images"])
torch.manual_seed(0)
start = time.perf_counter()
result = estimate_nll(model, x, torch.zeros(len(x), dtype=torch.long), k=int(sys.argv[3]))
print(json.dumps({"nll": result.nll, "seconds": time.perf_counter() - start}))
"""


def peers_python() -> str:
    """The peers' interpreter, creating their environment the first time (a few minutes: pythae's dependencies)."""
    python = VENV / "bin" / "python"
    if not (VENV / ".ready").is_file():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "-c", str(ROOT / "constraints-ci.txt"),
                        "torch", "pythae", "pillow"], check=True)
        (VENV / ".ready").touch()
    return str(python)


def export_mnist(path: Path) -> None:
    """MNIST as uint8 arrays, as torchvision holds it: 60,000 training digits (vaekit's train + valid) and the test."""
    from vaekit.data.mnist import load_mnist_arrays

    splits, _ = load_mnist_arrays()
    to_u8 = lambda a: np.round(a.reshape(-1, 28, 28) * 255).astype(np.uint8)  # noqa: E731
    np.savez(path, train_images=np.concatenate([to_u8(splits["train"][0]), to_u8(splits["valid"][0])]),
             train_labels=np.concatenate([splits["train"][1], splits["valid"][1]]).astype(np.int64),
             test_images=to_u8(splits["test"][0]), test_labels=splits["test"][1].astype(np.int64))


def timed_process(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - start


def train_side_by_side(python: str, data: Path, tmp: Path, repeats: int) -> tuple[dict[str, object], Path]:
    env = {**os.environ, "PEER_MNIST_NPZ": str(data), "PYTHONPATH": str(PEERS)}
    tools = {
        "vaekit": (lambda r: [*VAEKIT, "train", *TRAIN_FLAGS, "--run-dir", str(tmp / f"vaekit-{r}")], 50_000),
        "pytorch/examples": (lambda r: [python, str(PEERS / "pytorch_examples_vae.py"), "--epochs", "1",
                                        "--no-accel"], 60_000),
        "pythae": (lambda r: [python, str(PEERS / "pythae_vae.py"), "train", str(data), str(tmp / f"pythae-{r}")],
                   50_000),
    }
    seconds: dict[str, list[float]] = {name: [] for name in tools}
    for r in range(repeats):
        for name, (cmd, _) in tools.items():
            cwd = tmp / f"cwd-{name.replace('/', '-')}-{r}"
            (cwd / "results").mkdir(parents=True)  # pytorch/examples writes its images into ./results
            seconds[name].append(timed_process(cmd(r), cwd, env))
            print(f"train {name}: {seconds[name][-1]:.2f} s", flush=True)
    rows = []
    for name, (_, images) in tools.items():
        wall = statistics.median(seconds[name])
        rows.append({"tool": name, "seconds": seconds[name], "median_seconds": wall, "training_images": images,
                     "ms_per_training_image": 1000 * wall / images})
    peers = [r for r in rows if r["tool"] != "vaekit"]
    ours = rows[0]["ms_per_training_image"]
    fastest = min(peers, key=lambda r: r["ms_per_training_image"])
    for r in peers:
        r["vaekit_time_ratio_per_image"] = ours / r["ms_per_training_image"]
        r["vaekit_time_ratio_whole_process"] = rows[0]["median_seconds"] / r["median_seconds"]
    return {"rows": rows, "fastest_peer": fastest["tool"],
            "ratio_to_fastest_peer_per_image": ours / fastest["ms_per_training_image"]}, tmp / "vaekit-0"


def nll_side_by_side(python: str, run: Path, tmp: Path, k: int, images: int, repeats: int) -> dict[str, object]:
    import vaekit
    from vaekit.data import load_dataset
    from vaekit.evaluate import eval_images

    weights = tmp / "weights.npz"
    np.savez(weights, **{name: t.numpy() for name, t in vaekit.load(run).state_dict().items()})
    x, _ = eval_images(load_dataset("mnist").test, "dynamic", images)  # the NLL protocol: binarized once
    test = tmp / "test.npz"
    np.savez(test, images=x.numpy().astype(np.float32))
    cmds = {"vaekit": [sys.executable, "-c", VAEKIT_NLL, str(run), str(test), str(k)],
            "pythae get_nll": [python, str(PEERS / "pythae_vae.py"), "nll", str(test), str(weights), str(k)]}
    results: dict[str, list[dict[str, float]]] = {name: [] for name in cmds}
    for _ in range(repeats):
        for name, cmd in cmds.items():
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            results[name].append(json.loads(out.strip().splitlines()[-1]))
            print(f"nll {name}: {results[name][-1]}", flush=True)
    summary = {name: {"nll": statistics.mean(r["nll"] for r in rs), "seconds": [r["seconds"] for r in rs],
                      "median_seconds": statistics.median(r["seconds"] for r in rs)} for name, rs in results.items()}
    return {"k": k, "images": images, "tools": summary,
            "pythae_over_vaekit_time": summary["pythae get_nll"]["median_seconds"] / summary["vaekit"]["median_seconds"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--k", type=int, default=1000)
    parser.add_argument("--images", type=int, default=200)
    args = parser.parse_args()
    python = peers_python()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        export_mnist(tmp / "mnist.npz")
        training, run = train_side_by_side(python, tmp / "mnist.npz", tmp, args.repeats)
        nll = nll_side_by_side(python, run, tmp, args.k, args.images, args.repeats)
    versions = subprocess.run([python, "-c", "from importlib.metadata import version as v; print(v('pythae'), v('torch'))"],
                              capture_output=True, text=True, check=True).stdout.split()
    write_result("peers-cpu", {"training": training, "nll": nll, "repeats": args.repeats,
                               "peers": {"pythae": versions[0], "torch in their environment": versions[1],
                                         "pytorch/examples": "vae/main.py at 77f55b9"},
                               "command": f"python benchmarks/peers.py --repeats {args.repeats} --k {args.k} "
                                          f"--images {args.images}"})


if __name__ == "__main__":
    main()
