"""How far a better posterior could take the shipped poem model: its encoder against a Gaussian fitted to each
held-out poem by itself (diagonal, then full covariance), on the same decoder, beside the importance-sampled bound.

    python benchmarks/poem_posterior.py [--form quatrain] [--poems 1650] [--steps 100] [--samples 8]

The per-poem fits (`vaekit.poetry.refit.optimise_posteriors`: Adam on each poem's true ELBO, started at the
encoder's answer) are the best any Gaussian encoder could do on this decoder: if they do not reach a target, no
encoder, however large or however trained, will. Every bound is the true ELBO, its likelihood term averaged over
`--samples` draws per poem; reconstruction is greedy decoding at each q's mean, as in `vaekit poem evaluate`.
Needs the corpus (`vaekit poem fetch`).
"""

from __future__ import annotations

import argparse
import math
import time

import torch

from common import write_result
from vaekit.evaluate import estimate_nll
from vaekit.poetry import load_poem_model
from vaekit.poetry.refit import optimise_posteriors, posterior_elbo
from vaekit.poetry.task import split_items

CHUNK = 275  # poems fitted at once: the logits of 275 x 20 positions x 6,487 characters stay near 150 MB


def measure(model: torch.nn.Module, held: torch.Tensor, fit: str, steps: int, samples: int) -> dict[str, float]:
    """Bound, KL and reconstruction over `held` with the encoder's q ("encoder") or per-poem fitted ones."""
    start = time.perf_counter()
    bounds, kls, right = [], [], []
    for i in range(0, len(held), CHUNK):
        x = held[i:i + CHUNK]
        if fit == "encoder":
            with torch.no_grad():
                q = model.posterior(x)
        else:
            q = optimise_posteriors(model, x, steps=steps, covariance=fit, seed=i)
        with torch.no_grad():
            bound, kl = posterior_elbo(model, x, q, samples=samples)
            right.append((model.greedy(q.mean) == x).float())
        bounds.append(bound)
        kls.append(kl)
        print(f"{fit}: {i + len(x)} poems ({time.perf_counter() - start:.0f} s)", flush=True)
    bound, length = torch.cat(bounds).mean().item(), held.shape[1]
    return {"posterior": fit, "steps": 0 if fit == "encoder" else steps, "elbo_per_poem": bound,
            "perplexity_bound": math.exp(-bound / length), "kl_per_poem": torch.cat(kls).mean().item(),
            "reconstruction_accuracy": torch.cat(right).mean().item(), "seconds": time.perf_counter() - start}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--form", default="quatrain")
    parser.add_argument("--poems", type=int, default=1650)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--k", type=int, default=100, help="importance samples for the reference row")
    args = parser.parse_args()
    torch.manual_seed(0)
    model = load_poem_model(args.form).float().eval()
    _, held_items = split_items(model.run_config)
    held = model.vocab.encode([t for t, _ in held_items])[: args.poems]
    rows = [measure(model, held, fit, args.steps, args.samples) for fit in ("encoder", "diagonal", "full")]
    for row in rows:
        print(row, flush=True)
    start = time.perf_counter()
    nll = estimate_nll(model, held, torch.zeros(len(held), dtype=torch.long), k=args.k)
    iwae = {"k": args.k, "perplexity_iwae": math.exp(nll.nll / held.shape[1]), "seconds": time.perf_counter() - start}
    print(iwae, flush=True)
    write_result("poem_posterior", {
        "form": args.form, "poems": len(held), "samples": args.samples, "rows": rows, "iwae": iwae,
        "command": f"python benchmarks/poem_posterior.py --form {args.form} --poems {args.poems} "
                   f"--steps {args.steps} --samples {args.samples} --k {args.k}"})


if __name__ == "__main__":
    main()
