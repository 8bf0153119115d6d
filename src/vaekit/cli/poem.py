"""`vaekit poem`: fetch the corpus, train, write (with the rules of verse), interpolate and evaluate."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from vaekit.cli.options import HelpFormatter, count, nonnegative, probability, seed, temperature

__all__ = ["add_poem_commands"]

def cmd_poem_fetch(args: argparse.Namespace) -> None:
    from vaekit.data.poetry import fetch_corpus

    print(fetch_corpus(args.dest))


def cmd_poem_train(args: argparse.Namespace) -> None:
    from vaekit.config import TrainConfig
    from vaekit.poetry import SAMPLING, ConstraintError, VerseRules, format_poem, write
    from vaekit.poetry.config import PoemConfig, poem_flags
    from vaekit.poetry.recipe import recipe_settings
    from vaekit.train import Trainer, resume_config

    if args.resume:
        config = resume_config(args.run_dir, {k: v for k, v in (("device", args.device),
                                                                 ("precision", args.precision)) if v})
    else:
        given = {name: getattr(args, name) for _, name, _ in poem_flags()}
        given.update({k: getattr(args, k) for k in ("epochs", "lr", "kl_warmup", "latent_dim", "batch_size",
                                                    "conditioning")})
        if args.quatrains_only:
            given.update(regulated_halves=False, long_stanzas=False)
        form = given["form"] or PoemConfig.form
        settings = recipe_settings(given["decoder"], form, {**given, "form": form})
        config = TrainConfig.from_flat(
            "command line", task="poem", model="cvae" if args.themed else "vae", run_dir=args.run_dir,
            seed=args.seed, device=args.device or "auto", precision=args.precision or "auto",
            train_size=args.train_size, max_minutes=args.max_minutes, **settings)
    trainer = Trainer(config, resume=args.resume)
    trainer.fit()
    if trainer.dist.is_main:
        trainer.model.eval()
        trainer.model.vocab = trainer.task.vocab
        try:  # as `vaekit poem write` writes them
            texts = write(trainer.model, 3, seed=0, rules=VerseRules(config.poem.form))
        except ConstraintError as e:  # a tiny corpus may lack the characters a rule needs
            print(f"(the rules cannot be kept with this vocabulary: {e}; decoded freely)")
            texts = write(trainer.model, 3, seed=0, temperature=SAMPLING.temperature)
        for text in texts:
            print(format_poem(text) + "\n")


def _verse_rules(args: argparse.Namespace, model: Any) -> Any:
    """The rules `poem write` asks the decoder to keep (None with --free), read as the page reads them."""
    from vaekit.poetry.decode import rules_from_options

    if args.free:
        return None
    return rules_from_options(model.run_config.poem.form, template=args.template, rhyme=args.rhyme,
                              acrostic=args.acrostic, first_line=args.first_line, keywords=args.keywords,
                              max_uses=args.max_uses)


def _poem_model(form: str | None, run: str | None, themed: bool = False) -> Any:
    """The poem model a command names: a run directory, else the model shipped for the form (or its themed one)."""
    import vaekit
    from vaekit.data import DataError

    model = vaekit.load(run if run is not None else f"{form or 'quatrain'}{'-themed' if themed else ''}")
    if not hasattr(model, "vocab"):
        raise DataError(f"{run}: not a poem run (it was trained with `vaekit train`); pass a `vaekit poem train` run")
    return model


def cmd_poem_write(args: argparse.Namespace) -> None:
    from vaekit.data.poetry import to_simplified
    from vaekit.poetry import format_poem, write

    model = _poem_model(args.form, args.run, themed=args.theme is not None)
    texts = write(model, args.n, seed=args.seed, temperature=args.temperature, rules=_verse_rules(args, model),
                  top_p=args.top_p, beam=args.beam, best_of=args.best_of, theme=args.theme,
                  repeat_penalty=args.repeat_penalty)
    if args.simplified:  # the rules were kept on the traditional text; conversion changes only the glyphs
        texts = to_simplified(texts)
    for text in texts:
        print(format_poem(text) + "\n")


def cmd_poem_interpolate(args: argparse.Namespace) -> None:
    from vaekit.poetry import VerseRules, format_poem, interpolate

    model = _poem_model(args.form, args.run)
    rules = None if args.free else VerseRules(form=model.run_config.poem.form)
    for i, text in enumerate(interpolate(model, args.first, args.second, steps=args.steps, rules=rules,
                                         seed=args.seed)):
        print(f"[{i}]\n{format_poem(text)}\n")


def cmd_poem_evaluate(args: argparse.Namespace) -> None:
    from vaekit.poetry.evaluate import evaluate_poems
    from vaekit.runs import atomic_write_text

    model = _poem_model(args.form, args.run, themed=args.themed)
    r = evaluate_poems(model, args.corpus, n=args.n, seed=args.seed, temperature=args.temperature,
                       progress=lambda stage: print(f"evaluate: {stage} ...", file=sys.stderr, flush=True))
    print(f"{r['form']}: {r['poems']} poems each way (temperature {r['temperature']:g}, top-p {r['top_p']:g}, "
          f"seed {r['seed']}), beside {min(r['poems'], r['held_out_poems'])} held-out Tang poems")
    print(f"  {'':24}{'rules kept':>12}{'free':>10}{'Tang poems':>12}")
    for key, label in (("rhyme", "rhyme (Pingshui)"), ("template_fit", "fits a template"),
                       ("alternating_2_4", "2nd/4th tones alternate"), ("doubled_character", "character doubled"),
                       ("repeats_per_poem", "repeats per poem"), ("character_thrice", "a character thrice"),
                       ("copied_lines", "lines copied"), ("distinct_1", "distinct-1"), ("distinct_2", "distinct-2")):
        cells = [r[w][key] for w in ("constrained", "unconstrained", "corpus")]
        if cells[0] is None:
            continue
        fmt = "{:>10.3f}" if key.startswith("distinct") else "{:>10.2f}" if key == "repeats_per_poem" else "{:>10.1%}"
        print(f"  {label:24}" + "".join("  " + fmt.format(c) for c in cells))
    print(f"  acrostic heads placed: {r['acrostic_heads_placed']:.1%}")
    f = r["fit"]
    print(f"  fit ({r['fit_poems']} held-out poems of {r['held_out_poems']}): reconstruction accuracy "
          f"{f['reconstruction_accuracy']:.1%}, "
          f"elbo {f['elbo_per_char']:.3f} nats/char, kl {f['kl_per_poem']:.2f} nats/poem, active units "
          f"{f['active_units']}/{f['latent_dim']}")
    if "perplexity_iwae" in f:
        print(f"  perplexity: bound {f['perplexity_bound']:.0f}; importance-sampled (k={f['iwae_k']}, "
              f"{f['iwae_poems']} poems) {f['perplexity_iwae']:.0f} (bound on those poems "
              f"{f['perplexity_bound_same_poems']:.0f})")
    if "interpolation" in r:
        i = r["interpolation"]
        print(f"  interpolation ({i['pairs']} pairs): {i['nearer_end_share']:.1%} of inner poems share more "
              "characters with the nearer end")
    if "themes" in r:
        t = r["themes"]
        cells = ", ".join(f"{k} {v:.0%}" for k, v in t["written"].items() if k != "accuracy")
        print(f"  theme classifier on {t['per_theme']} poems a theme: {t['written']['accuracy']:.1%} "
              f"(chance {t['chance']:.0%}): {cells}")
    if args.out is None and args.run is None:  # a shipped model: the installed package is never written to
        print("(metrics not saved: pass --out FILE to keep them as JSON)")
        return
    out = Path(args.out) if args.out else Path(args.run) / "metrics.json"
    atomic_write_text(out, json.dumps(r, indent=2, ensure_ascii=False))
    print(out)


def _add_poem_settings(p: argparse.ArgumentParser) -> None:
    """A flag for every setting of PoemConfig that the command line offers, from the field's declaration (type,
    choices, help, group); each defaults to None, so the recipe or the field's default fills what is not given."""
    from dataclasses import MISSING

    from vaekit.data.poetry import FORMS
    from vaekit.poetry.config import poem_flags
    from vaekit.poetry.recipe import recipe_default

    groups: dict[str, Any] = {}
    for flag, name, f in poem_flags():
        group = f.metadata["group"]
        target = p if group == "poem" else groups.setdefault(group, p.add_argument_group(group))
        default = recipe_default(name)
        if default is None and f.default is not MISSING and f.default not in (None, ""):
            default = ("on" if f.default else "off") if isinstance(f.default, bool) else str(f.default)
        help_text = f.metadata["help"] + (f" (default: {default})" if default is not None else "")
        kind = str(f.type)
        if kind.startswith("bool"):
            target.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=None, help=help_text)
            continue
        convert = int if kind.startswith("int") else float if kind.startswith("float") else str
        choices = FORMS if name == "form" else f.metadata["choices"]
        target.add_argument(flag, dest=name, type=convert, choices=choices, default=None, help=help_text)


def add_poem_commands(sub: Any) -> None:
    """The `poem` subcommand group."""
    from vaekit.data.poetry import FORMS
    from vaekit.models.config import CONDITIONINGS
    from vaekit.poetry.decode import MAX_BEAM, MAX_CANDIDATES, SAMPLING
    from vaekit.poetry.recipe import COMMON, PARALLEL_EPOCHS, POEM_EPOCHS, recipe_default
    from vaekit.poetry.themes import THEME_NAMES

    poem = sub.add_parser("poem", help="the CNN + VAE poem generator (five- and seven-character Tang verse)",
                          description="Write, train and score classical Chinese poems.",
                          epilog="examples:\n  vaekit poem write -n 5\n  vaekit poem write --acrostic 春夏秋冬\n"
                                 "  vaekit poem train --form quatrain7 --run-dir runs/qj", formatter_class=HelpFormatter)
    psub = poem.add_subparsers(dest="poem_command", required=True)
    p = psub.add_parser("fetch", help="download the chinese-poetry corpus with npm", formatter_class=HelpFormatter,
                        epilog="example: vaekit poem fetch --dest ~/data/chinese-poetry")
    p.add_argument("--dest", help="where to keep it (default ~/.cache/vaekit/chinese-poetry or $VAEKIT_POETRY)")
    p.set_defaults(func=cmd_poem_fetch)

    p = psub.add_parser("train", help="train a poem model through the shared Trainer", formatter_class=HelpFormatter,
                        epilog="example: vaekit poem train --form quatrain --run-dir runs/quatrain   (the recipe shipped)")
    _add_poem_settings(p)  # one flag a PoemConfig field, generated from its declaration
    p.add_argument("--run-dir", default="runs/poem", help="where the run is written")
    p.add_argument("--epochs", type=int, default=None,
                   help=f"passes over the poems (default per form: {POEM_EPOCHS}; parallel: {PARALLEL_EPOCHS})")
    p.add_argument("--batch-size", type=int, default=None, help=f"poems a batch (default {COMMON['batch_size']})")
    p.add_argument("--lr", type=float, default=None, help=f"AdamW learning rate (default {recipe_default('lr')})")
    p.add_argument("--latent-dim", type=int, default=None, help=f"dimensions of z (default {COMMON['latent_dim']})")
    p.add_argument("--kl-warmup", type=float, default=None,
                   help=f"epochs over which the KL weight ramps to 1 (default {recipe_default('kl_warmup')})")
    p.add_argument("--themed", action="store_true",
                   help="train a CVAE over the poem's theme (read from its title: see vaekit.poetry.themes)")
    p.add_argument("--conditioning", choices=CONDITIONINGS, default=None,
                   help="themed: the theme enters encoder, decoder and the prior's mean (both, the default), encoder "
                        "and decoder only (input), or only the prior's mean (prior)")
    p.add_argument("--quatrains-only", action="store_true",
                   help="quatrain forms: only true quatrains (the same as --no-regulated-halves --no-long-stanzas)")
    p.add_argument("--train-size", type=int, default=None, help="train on the first N poems only (quick runs)")
    p.add_argument("--max-minutes", type=float, default=None, help="stop after this many minutes, saving the model")
    p.add_argument("--seed", type=seed, default=0,
                   help="seed for the split, shuffling and initialisation")
    p.add_argument("--device", default=None, help="auto, cpu, cuda or mps")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16"), default=None,  # vaekit.config.TRAIN_PRECISIONS
                   help="of a training step's products: bf16 autocast (losses stay fp32), fp32, or auto: bf16 where "
                        "the device multiplies it in hardware, fp32 elsewhere")
    p.add_argument("--resume", action="store_true", help="continue the run in --run-dir from its last checkpoint")
    p.set_defaults(func=cmd_poem_train)

    examples = {"write": "vaekit poem write --form quatrain7 --acrostic 春夏秋冬 --simplified",
                "interpolate": "vaekit poem interpolate 床前明月光疑是地上霜 舉頭望明月低頭思故鄉 --form couplet",
                "evaluate": "vaekit poem evaluate --form quatrain -n 1000 --out quatrain-metrics.json"}
    for name, fn, text in (("write", cmd_poem_write, "write new poems from random z, keeping the rules of verse"),
                           ("interpolate", cmd_poem_interpolate, "walk the latent line between two poems"),
                           ("evaluate", cmd_poem_evaluate, "rules of verse, repetition, copying, diversity and fit")):
        p = psub.add_parser(name, help=text, description=text, epilog=f"example: {examples[name]}",
                            formatter_class=HelpFormatter)
        p.add_argument("--form", choices=FORMS, default=None, help="use the shipped model of this form (default quatrain)")
        p.add_argument("--run", help="a run directory from `vaekit poem train` (instead of a shipped model)")
        p.add_argument("--seed", type=seed, default=None if name == "write" else 0,
                       help="seed for the random draws (same seed, same poems)")
        p.set_defaults(func=fn)
        if name == "write":
            p.add_argument("-n", type=count(1, MAX_CANDIDATES), default=5,
                           help="number of poems (with --best-of and --beam, at most "
                                f"{MAX_CANDIDATES:,} candidates a call)")
            p.add_argument("--temperature", type=temperature, default=SAMPLING.temperature,
                           help="sampling temperature; 0 decodes by argmax (Su's setup: repetitive poems)")
            p.add_argument("--top-p", type=probability, default=SAMPLING.top_p,
                           help="sample from the smallest set of characters holding this much probability")
            p.add_argument("--beam", type=count(2, MAX_BEAM, zero=True), default=0,
                           help="beam search of this width instead of sampling (0: sample)")
            p.add_argument("--best-of", type=count(1, 100), default=1,
                           help="write N candidates a poem and keep the one the model scores highest")
            p.add_argument("--template", default="auto",
                           help="tonal template, e.g. 仄起首句不入韵 (or 仄起); auto draws one as often as Tang "
                                "poets used it; none: no tone rules")
            p.add_argument("--rhyme", default="auto",
                           help="Pingshui rhyme group, e.g. 七陽, or one character of it, e.g. 光; auto: the "
                                "model's first rhyme fixes the group; none: no rhyme rule")
            p.add_argument("--repeat-penalty", type=nonnegative, default=SAMPLING.repeat_penalty,
                           help="nats off the logit of a character the poem already holds (0: none); without it "
                                "the model repeats characters twice as often as Tang poets")
            p.add_argument("--max-uses", type=count(0, 56, zero=True), default=2,
                           help="a character at most this often in a poem (0: any number of times)")
            p.add_argument("--acrostic", help="characters to head the lines, one a line (藏头诗), e.g. 春夏秋冬")
            p.add_argument("--first-line", help="a first line for the model to continue, e.g. 白日依山盡")
            p.add_argument("--keywords", help="characters that must appear, comma-separated, e.g. 月,山")
            p.add_argument("--simplified", action="store_true",
                           help="print simplified characters (OpenCC; the rules are kept on the traditional text)")
            p.add_argument("--free", action="store_true",
                           help="no rules at all: decode each position freely, as Su's model did")
            p.add_argument("--theme", choices=THEME_NAMES, default=None,
                           help="what the poem is about: uses the shipped themed model of the form (or a --themed run)")
        elif name == "interpolate":
            p.add_argument("first", help="the poem the walk starts from (punctuation optional)")
            p.add_argument("second", help="the poem it ends at")
            p.add_argument("--steps", type=count(2, 100), default=6, help="poems along the line, ends included")
            p.add_argument("--free", action="store_true",
                           help="decode each point's most likely characters without the rules of verse")
        else:
            p.add_argument("-n", type=count(2, MAX_CANDIDATES), default=1000,
                           help="poems to generate and score each way, and held-out poems to fit")
            p.add_argument("--temperature", type=temperature, default=SAMPLING.temperature, help="as for write (0: argmax)")
            p.add_argument("--corpus", help="folder or clone of the corpus")
            p.add_argument("--out", help="where to write the metrics JSON")
            p.add_argument("--themed", action="store_true", help="score the shipped themed model of the form")
