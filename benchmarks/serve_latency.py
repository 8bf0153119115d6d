"""Response times of `vaekit serve`'s endpoints on this machine, through a real uvicorn server on loopback.

    python benchmarks/serve_latency.py [--run RUN] [--requests 50]

Trains a flagship-sized run (conv VAE, latent 16; two minutes) unless --run names one, serves it with the
shipped quatrain model, and times each endpoint `--requests` times (median and 95th percentile, ms).
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from common import machine, write_result

TARGET_MS = 100.0


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(url: str, body: dict | None) -> float:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    start = time.perf_counter()
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()
    return (time.perf_counter() - start) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--run", default=None)
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run = args.run
        if run is None:
            run = str(Path(tmp) / "flagship")
            subprocess.run([sys.executable, "-m", "vaekit.cli", "train", "--run-dir", run, "--latent-dim", "16",
                            "--max-minutes", "2", "--epochs", "3", "--no-tensorboard"], check=True, capture_output=True)
        port = _port()
        server = subprocess.Popen([sys.executable, "-m", "vaekit.cli", "serve", run, "--port", str(port)],
                                  stdout=subprocess.PIPE, text=True)
        try:
            server.stdout.readline()
            base = f"http://127.0.0.1:{port}"
            for _ in range(100):
                try:
                    _post(base + "/api/runs", None)
                    break
                except OSError:
                    time.sleep(0.2)
            run_id = Path(run).name
            pixels = [0.0] * 784
            for r in range(6, 22):
                pixels[r * 28 + 14] = 1.0
            cases = {
                "decode (one image)": ("/api/decode", {"run": run_id, "point": [0.5, -0.3]}),
                "encode (a drawing)": ("/api/encode", {"run": run_id, "pixels": pixels}),
                "sample (16 images)": ("/api/sample", {"run": run_id, "n": 16}),
                "interpolate (10 images)": ("/api/interpolate", {"run": run_id, "steps": 10}),
                "poem (4 quatrains, rules kept)": ("/api/poem", {"form": "quatrain", "n": 4}),
                "poem (1 quatrain)": ("/api/poem", {"form": "quatrain", "n": 1}),
                "poem interpolation (6 quatrains, rules kept)": (
                    "/api/poem/interpolate", {"form": "quatrain", "a": "床前明月光疑是地上霜舉頭望明月低頭思故鄉",
                                              "b": "白日依山盡黃河入海流欲窮千里目更上一層樓", "steps": 6}),
            }
            rows = []
            for name, (path, body) in cases.items():
                _post(base + path, body)  # warm-up (the poem model loads on first use)
                times = sorted(_post(base + path, {**body, "seed": i} if "poem" in path or "sample" in path
                                     else body) for i in range(args.requests))
                row = {"endpoint": name, "median_ms": statistics.median(times),
                       "p95_ms": times[int(0.95 * (len(times) - 1))], "requests": len(times)}
                row["within_target"] = row["median_ms"] <= TARGET_MS
                rows.append(row)
                print(json.dumps(row))
        finally:
            server.terminate()
            server.wait(timeout=10)
    write_result("serve-latency-cpu", {"machine": machine(), "target_ms": TARGET_MS, "rows": rows,
                                       "command": "python benchmarks/serve_latency.py"})


if __name__ == "__main__":
    main()
