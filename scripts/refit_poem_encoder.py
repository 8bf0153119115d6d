"""Refit a shipped poem model's encoder with its decoder frozen, for the true ELBO under a lower BN-VAE floor.

    python scripts/refit_poem_encoder.py quatrain --posterior-bn 0.78 --steps 1000 [--lr 1e-3] [--themed] \
        [--encoder-layers N] [--encoder-dilations 1,1,2,4] [--fit-prior] [--decoder-lr 1e-4 [--word-dropout 0.3]] \
        [--write --device 'CPU, 2 threads']

Training shapes the posterior to feed the decoder (BN-VAE's floor keeps the KL up: gamma 0.9 in the recipe,
0.84 for the shipped quatrain model); once the decoder is trained, an encoder fitted to the ELBO alone under a
lower floor gives a tighter bound on the same decoder (`vaekit.poetry.refit`). The decoder and the shared
character embedding stay as they are unless --decoder-lr is given. The held-out fit (`vaekit.poetry.metrics.fit`)
is printed before and after; with --write the refitted weights (float16, as shipped), the new gamma in config.json
and a "refit" entry in TRAINED.json go into the package, so its metrics must be measured again (benchmarks/poems.py).
`--encoder-layers N` deepens the encoder to N residual gated layers first (the new ones start as the identity, so
the refit starts from the trained encoder's answer); `--encoder-dilations 1,1,2,4` spaces each layer's taps (a layer
whose dilation changes starts again as the identity); `--fit-prior` replaces N(0, I) by the full-covariance Gaussian
matched to the training poems' posteriors (`vaekit.poetry.refit.fit_prior`), before and after the refit;
`--decoder-lr R` fine-tunes the decoder and the shared embedding alongside, at rate R (sizes unchanged), and
`--word-dropout P` hides each character the decoder reads at rate P while it does (Bowman et al.: the decoder must
then lean on z), for that fine-tuning only.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import time

import torch
from safetensors.torch import save_file

import vaekit
from vaekit.poetry import shipped_model_dir
from vaekit.poetry.metrics import fit
from vaekit.poetry.refit import fit_prior, refit_encoder
from vaekit.poetry.task import split_items

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("form")
    parser.add_argument("--themed", action="store_true", help="the form's themed CVAE (its encoder reads the theme)")
    parser.add_argument("--posterior-bn", type=float, required=True, help="BN-VAE gamma for the refitted encoder")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--kl-weight", type=float, default=1.0, help="weight of the KL while fitting (below 1 holds it up)")
    parser.add_argument("--encoder-layers", type=int, help="deepen the encoder to this many gated layers first")
    parser.add_argument("--encoder-dilations", help="the encoder layers' dilations, e.g. 1,1,2,4 (a changed layer "
                        "starts again as the identity)")
    parser.add_argument("--decoder-lr", type=float, default=0.0, help="fine-tune the decoder too, at this rate "
                        "(0: frozen)")
    parser.add_argument("--word-dropout", type=float, default=0.0, help="hide the decoder's input characters at this "
                        "rate while it is fine-tuned (needs --decoder-lr)")
    parser.add_argument("--fit-prior", action="store_true", help="a full-covariance Gaussian prior fitted to the posteriors")
    parser.add_argument("--write", action="store_true", help="write the refitted model into the package")
    parser.add_argument("--device", help="what it ran on, for TRAINED.json (needed with --write)")
    args = parser.parse_args()
    if args.write and not args.device:
        parser.error("--write needs --device, e.g. --device 'CPU, 2 threads (AMD EPYC)'")
    if args.word_dropout and not args.decoder_lr:
        parser.error("--word-dropout shapes the decoder's fine-tuning: give --decoder-lr as well")
    if not 0 <= args.word_dropout < 1:
        parser.error(f"--word-dropout is a rate in [0, 1), got {args.word_dropout}")
    torch.manual_seed(args.seed)
    model = vaekit.load(f"{args.form}-themed" if args.themed else args.form).float()
    if getattr(model, "decoder_kind", "") != "causal":
        raise SystemExit("refit_poem_encoder: only the causal models are refitted here")
    config = model.run_config
    train_items, held_items = split_items(config)
    train = model.vocab.encode([t for t, _ in train_items])
    held = model.vocab.encode([t for t, _ in held_items])
    train_labels, held_labels = (torch.tensor([c for _, c in items]) if args.themed else None
                                 for items in (train_items, held_items))
    before = fit(model, held, held_labels)
    print("before", json.dumps(before), flush=True)
    changes: dict[str, object] = {}
    if args.encoder_layers and args.encoder_layers != config.poem.encoder_layers:
        model.deepen_encoder(args.encoder_layers)  # refuses fewer layers than it has
        changes["encoder_layers"] = args.encoder_layers
    if args.encoder_dilations:
        dilations = [int(v) for v in args.encoder_dilations.split(",")]
        model.dilate_encoder(dilations)  # refuses a count that is not the encoder's
        changes["encoder_dilations"] = dilations
    if args.fit_prior:
        model.use_fitted_prior()
        changes["prior"] = "fitted"
    if changes:
        model.run_config = dataclasses.replace(config, poem=dataclasses.replace(config.poem, **changes))
    start = time.perf_counter()
    if args.fit_prior:
        print("prior", json.dumps(fit_prior(model, train)), flush=True)
    model.posterior_bn = args.posterior_bn
    if args.steps:
        refit_encoder(model, train, args.steps, args.lr, args.batch_size, args.seed,
                      log=lambda line: print(line, flush=True), labels=train_labels, kl_weight=args.kl_weight,
                      decoder_lr=args.decoder_lr, word_dropout=args.word_dropout if args.word_dropout else None)
        if args.fit_prior:  # the refitted posteriors have moved: match the prior to them again
            print("prior", json.dumps(fit_prior(model, train)), flush=True)
    seconds = time.perf_counter() - start
    after = fit(model, held, held_labels)
    print("after", json.dumps(after), flush=True)
    if args.write:
        out = shipped_model_dir(args.form, args.themed)
        state = {k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}
        save_file(state, str(out / "model.safetensors"))
        stored = json.loads((out / "config.json").read_text())
        gamma_before = stored["poem"]["posterior_bn"]
        stored["poem"]["posterior_bn"] = args.posterior_bn
        stored["poem"].update(changes)
        (out / "config.json").write_text(json.dumps(stored, indent=2) + "\n")
        trained = json.loads((out / "TRAINED.json").read_text(encoding="utf-8"))
        if "refit" in trained:  # a refit of a refitted model: the earlier steps stay on record, oldest first
            trained.setdefault("earlier_refits", []).append(trained.pop("refit"))
        trained["refit"] = {
            "command": f"python scripts/refit_poem_encoder.py {args.form}{' --themed' if args.themed else ''} "
                       f"--posterior-bn {args.posterior_bn} "
                       f"--steps {args.steps} --lr {args.lr} --batch-size {args.batch_size} --seed {args.seed} "
                       f"--kl-weight {args.kl_weight} "
                       + (f"--decoder-lr {args.decoder_lr} " if args.decoder_lr else "")
                       + (f"--word-dropout {args.word_dropout} " if args.word_dropout else "")
                       + (f"--encoder-layers {args.encoder_layers} " if "encoder_layers" in changes else "")
                       + (f"--encoder-dilations {args.encoder_dilations} " if "encoder_dilations" in changes else "")
                       + ("--fit-prior " if args.fit_prior else "") + "--write "
                       f"--device {args.device!r}",
            "what": (f"encoder refitted and decoder fine-tuned at lr {args.decoder_lr}"
                     + (f" with word dropout {args.word_dropout}" if args.word_dropout else "") if args.decoder_lr
                     else "encoder refitted with the decoder frozen")
                    + f", for the true ELBO, BN-VAE gamma {gamma_before} -> "
                    f"{args.posterior_bn}" + (f"; encoder deepened to {args.encoder_layers} layers"
                                              if "encoder_layers" in changes else "")
                    + (f"; encoder dilations {args.encoder_dilations}" if "encoder_dilations" in changes else "")
                    + ("; prior fitted to the training poems' posteriors (full covariance)" if args.fit_prior else ""),
            "device": args.device,
            "date": datetime.date.today().isoformat(), "seconds": seconds, "before": before, "after": after}
        (out / "TRAINED.json").write_text(json.dumps(trained, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"wrote {out}")
