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
        if args.recall and (args.themed or form == "ci"):
            raise ValueError("--recall trains the model that tells a verse form's poems back; it takes no theme or "
                             "tune (drop --themed, or choose a verse --form)")
        settings = recipe_settings(given["decoder"], form, {**given, "form": form}, recall=args.recall)
        config = TrainConfig.from_flat(
            "command line", task="poem", model="cvae" if args.themed or form == "ci" else "vae", run_dir=args.run_dir,
            seed=args.seed, device=args.device or "auto", precision=args.precision or "auto",
            train_size=args.train_size, max_minutes=args.max_minutes, **settings)
    trainer = Trainer(config, resume=args.resume)
    trainer.fit()
    if trainer.dist.is_main:
        model = trainer.evaluated_model.eval()  # what model.safetensors holds
        model.vocab = trainer.task.vocab
        if config.poem.form == "ci":
            from vaekit.poetry.ci import write_ci
            from vaekit.poetry.tunes import tunes

            model.run_config = config
            for tune in tunes()[:3]:
                print(f"{tune.name}\n{tune.format(write_ci(model, tune, 1, seed=0)[0])}\n")
            return
        try:  # as `vaekit poem write` writes them
            texts = write(model, 3, seed=0, rules=VerseRules(config.poem.form))
        except ConstraintError as e:  # a tiny corpus may lack the characters a rule needs
            print(f"(the rules cannot be kept with this vocabulary: {e}; decoded freely)")
            texts = write(model, 3, seed=0, temperature=SAMPLING.temperature)
        for text in texts:
            print(format_poem(text) + "\n")


def _verse_rules(args: argparse.Namespace, model: Any) -> Any:
    """The rules `poem write` asks the decoder to keep (None with --free), read as the page reads them."""
    from vaekit.poetry.decode import rules_from_options

    if args.free:
        return None
    return rules_from_options(model.run_config.poem.form, template=args.template, rhyme=args.rhyme,
                              acrostic=args.acrostic, first_line=args.first_line, keywords=args.keywords,
                              max_uses=2 if args.max_uses is None else args.max_uses, parallel=args.parallel)


def _form(args: argparse.Namespace) -> str | None:
    """The form a command asks for: --form, or ci when a --tune is named without a form or run."""
    return "ci" if args.tune is not None and args.form is None and args.run is None else args.form


def _poem_model(form: str | None, run: str | None, themed: bool = False, recall: bool = False) -> Any:
    """The poem model a command names: a run directory, else the model shipped for the form (its themed one, or with
    `recall` the one that tells poems back where the form has one)."""
    import vaekit
    from vaekit.data import DataError
    from vaekit.poetry import shipped_name

    model = vaekit.load(run if run is not None else shipped_name(form or "quatrain", themed, recall))
    if not hasattr(model, "vocab"):
        raise DataError(f"{run}: not a poem run (it was trained with `vaekit train`); pass a `vaekit poem train` run")
    return model


def _write_ci(args: argparse.Namespace, model: Any) -> None:
    """`poem write` for a ci model: to the tune asked (the first shipped one by default)."""
    from vaekit.data.poetry import to_traditional
    from vaekit.poetry.ci import CI_MAX_USES, write_ci
    from vaekit.poetry.tunes import find_tune, tunes

    unsupported = [flag for flag, value in (("--acrostic", args.acrostic), ("--first-line", args.first_line),
                                            ("--keywords", args.keywords), ("--beam", args.beam),
                                            ("--best-of", args.best_of != 1), ("--theme", args.theme),
                                            ("--template", args.template != "auto"), ("--rhyme", args.rhyme != "auto"))
                   if value]
    if unsupported:
        raise ValueError(f"{', '.join(unsupported)}: for the verse forms only; a ci's tune (--tune) fixes its lines, "
                         "tones and rhymes")
    tune = find_tune(args.tune) if args.tune else tunes()[0]
    texts = write_ci(model, tune, args.n, seed=args.seed, temperature=args.temperature, top_p=args.top_p,
                     repeat_penalty=args.repeat_penalty, rules=not args.free,
                     max_uses=CI_MAX_USES if args.max_uses is None else args.max_uses or None)
    for text in texts:
        shown = tune.format(text)
        print(f"{tune.traditional if args.traditional else tune.name}\n"
              f"{to_traditional([shown])[0] if args.traditional else shown}\n")


def cmd_poem_write(args: argparse.Namespace) -> None:
    from vaekit.data.poetry import to_simplified
    from vaekit.poetry import format_poem, write
    from vaekit.poetry.ci import is_ci_model

    model = _poem_model(_form(args), args.run, themed=args.theme is not None)
    if is_ci_model(model):
        _write_ci(args, model)
        return
    if args.tune is not None or args.traditional:
        raise ValueError("--tune and --traditional are for ci (--form ci); a verse form is written in traditional "
                         "characters already")
    texts = write(model, args.n, seed=args.seed, temperature=args.temperature, rules=_verse_rules(args, model),
                  top_p=args.top_p, beam=args.beam, best_of=args.best_of, theme=args.theme,
                  repeat_penalty=args.repeat_penalty)
    if args.simplified:  # the rules were kept on the traditional text; conversion changes only the glyphs
        texts = to_simplified(texts)
    for text in texts:
        print(format_poem(text) + "\n")


def cmd_poem_interpolate(args: argparse.Namespace) -> None:
    from vaekit.poetry import VerseRules, format_poem, interpolate
    from vaekit.poetry.ci import interpolate_ci, is_ci_model
    from vaekit.poetry.tunes import find_tune

    model = _poem_model(_form(args), args.run, recall=True)
    if is_ci_model(model):
        if args.tune is None:
            raise ValueError("ci of several tunes share a length: name the tune of both ci with --tune")
        tune = find_tune(args.tune)
        for i, text in enumerate(interpolate_ci(model, args.first, args.second, tune, steps=args.steps)):
            print(f"[{i}]\n{tune.format(text)}\n")
        return
    if args.tune is not None:
        raise ValueError("--tune is for ci (--form ci)")
    rules = None if args.free else VerseRules(form=model.run_config.poem.form)
    for i, text in enumerate(interpolate(model, args.first, args.second, steps=args.steps, rules=rules,
                                         seed=args.seed)):
        print(f"[{i}]\n{format_poem(text)}\n")


def _evaluate_ci(args: argparse.Namespace, model: Any) -> dict[str, Any]:
    from vaekit.poetry.evaluate import evaluate_ci

    r = evaluate_ci(model, args.corpus, n=args.n, seed=args.seed, temperature=args.temperature,
                    progress=lambda stage: print(f"evaluate: {stage} ...", file=sys.stderr, flush=True))
    print(f"ci: {r['per_tune']} a tune over {r['tunes']} tunes each way (temperature {r['temperature']:g}, top-p "
          f"{r['top_p']:g}, seed {r['seed']}), beside {r['fit_ci']} held-out Song ci")
    print(f"  {'':24}{'rules kept':>12}{'free':>10}{'Song ci':>12}")
    for key, label in (("tune_kept", "tune kept"), ("distinct_2", "distinct-2"), ("copied_lines", "lines copied"),
                       ("repeats_per_char", "repeats a character")):
        fmt = "{:>10.1%}" if key in ("tune_kept", "copied_lines") else "{:>10.3f}"
        print(f"  {label:24}" + "".join("  " + fmt.format(r[w][key]) for w in ("constrained", "unconstrained",
                                                                                "corpus")))
    f = r["fit"]
    print(f"  fit: elbo {f['elbo_per_ci']:.1f} nats a ci ({f['elbo_per_char']:.3f} a character), kl "
          f"{f['kl_per_ci']:.2f}, reconstruction {f['reconstruction_with_padding']:.1%} (padding included), active units "
          f"{f['active_units']}/{f['latent_dim']}")
    return r


def cmd_poem_reconstruct(args: argparse.Namespace) -> None:
    from vaekit.poetry import VerseRules, format_poem, kept_in_place, reconstruct

    model = _poem_model(args.form, args.run, recall=True)
    rules = None if args.free else VerseRules(form=model.run_config.poem.form)
    told = reconstruct(model, args.poem, rules=rules, seed=args.seed)
    print(format_poem(told))
    print(f"({kept_in_place(args.poem, told):.0%} of the characters in place)")


def cmd_poem_evaluate(args: argparse.Namespace) -> None:
    from vaekit.poetry.ci import is_ci_model
    from vaekit.poetry.evaluate import evaluate_poems

    if args.themed and args.recall:
        raise ValueError("--themed and --recall name two different shipped models; give one")
    model = _poem_model(args.form, args.run, themed=args.themed, recall=args.recall)
    if is_ci_model(model):
        r = _evaluate_ci(args, model)
        _save_metrics(args, r)
        return
    r = evaluate_poems(model, args.corpus, n=args.n, seed=args.seed, temperature=args.temperature,
                       progress=lambda stage: print(f"evaluate: {stage} ...", file=sys.stderr, flush=True))
    print(f"{r['form']}: {r['poems']} poems each way (temperature {r['temperature']:g}, top-p {r['top_p']:g}, "
          f"seed {r['seed']}), beside {min(r['poems'], r['held_out_poems'])} held-out Tang poems")
    print(f"  {'':24}{'rules kept':>12}{'free':>10}{'Tang poems':>12}")
    for key, label in (("rhyme", "rhyme (Pingshui)"), ("template_fit", "fits a template"),
                       ("alternating_2_4", "2nd/4th tones alternate"), ("doubled_character", "character doubled"),
                       ("repeats_per_poem", "repeats per poem"), ("character_thrice", "a character thrice"),
                       ("copied_lines", "lines copied"), ("distinct_1", "distinct-1"), ("distinct_2", "distinct-2"),
                       ("nian_dui", "粘對 kept"), ("parallel_middle", "parallelism, middle"),
                       ("parallel_first", "parallelism, first")):
        cells = [r[w].get(key) for w in ("constrained", "unconstrained", "corpus")]
        if cells[0] is None:
            continue
        fmt = ("{:>10.3f}" if key.startswith(("distinct", "parallel")) else "{:>10.2f}" if key == "repeats_per_poem"
               else "{:>10.1%}")
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
    if "round_trip" in r:
        t = r["round_trip"]
        steps = " ".join(f"{a:.0%}/{b:.0%}" for a, b in zip(t["share_of_a"], t["share_of_b"], strict=True))
        print(f"  told back with the rules kept ({t['pairs']} pairs, `poem interpolate A B`): the ends keep "
              f"{t['ends_kept']:.1%} of their poems' characters in place; A/B in place along the path: {steps} "
              f"({'monotone' if t['monotone'] else 'not monotone'}); rules kept by {t['rules_kept']:.1%} of its poems")
    if "themes" in r:
        t = r["themes"]
        cells = ", ".join(f"{k} {v:.0%}" for k, v in t["written"].items() if k != "accuracy")
        print(f"  theme classifier on {t['per_theme']} poems a theme: {t['written']['accuracy']:.1%} "
              f"(chance {t['chance']:.0%}): {cells}")
    _save_metrics(args, r)


def _save_metrics(args: argparse.Namespace, r: dict[str, Any]) -> None:
    from vaekit.runs import atomic_write_text

    if args.out is None and args.run is None:  # a shipped model: the installed package is never written to
        print("(metrics not saved: pass --out FILE to keep them as JSON)")
        return
    out = Path(args.out) if args.out else Path(args.run) / "metrics.json"
    atomic_write_text(out, json.dumps(r, indent=2, ensure_ascii=False))
    print(out)


def cmd_poem_check(args: argparse.Namespace) -> int:
    from vaekit.poetry.parallel import MIDDLE_COUPLETS
    from vaekit.poetry.verse import check

    verdict = check(args.poem, form=args.form, template=None if args.template == "auto" else args.template)
    broken = verdict.breaks + verdict.nian_dui
    lines = len(verdict.template.lines)
    print(f"template {verdict.template.name}: " + ("every rule kept" if not verdict.breaks else
                                                   f"{len(verdict.breaks)} broken"))
    for b in verdict.breaks:
        print(f"  {b}")
    if lines >= 4:
        print("粘對: " + ("kept" if not verdict.nian_dui else f"{len(verdict.nian_dui)} broken"))
        for b in verdict.nian_dui:
            print(f"  {b}")
    if verdict.parallelism:
        cells = "  ".join(f"{i + 1}{'*' if i in MIDDLE_COUPLETS else ''} {p:.2f}"
                          for i, p in enumerate(verdict.parallelism))
        print(f"parallelism by couplet (* the middle ones, which regulated verse makes parallel): {cells}")
    if verdict.unknown:
        print(f"({verdict.unknown} characters at ruled places are not in the rhyme book and were not judged)")
    return 1 if broken else 0


def cmd_poem_tunes(args: argparse.Namespace) -> None:
    from vaekit.poetry.tunes import find_tune, tunes

    if args.tune:
        tune = find_tune(args.tune)
        print(f"{tune.name} ({tune.traditional}): {tune.chars} characters in {len(tune.lines)} lines, read from "
              f"{tune.poems} of the corpus's {tune.total} ci of this tune")
        marks = {i: f" rhymes ({k + 1}, {tone})" for k, (group, tone) in enumerate(zip(tune.rhymes, tune.rhyme_tones,
                                                                                     strict=True)) for i in group}
        for i, (pattern, stop) in enumerate(zip(tune.tones, tune.stops, strict=True)):
            print(f"  {i + 1:>2}  {pattern}{stop}{marks.get(i, '')}")
        print("(平 level, 仄 oblique, 中 free; a rhyme set's ends share one 词林正韵 part)")
        return
    print(f"{'tune':10}{'traditional':>12}{'chars':>7}{'lines':>7}{'rhymes':>8}   ci")
    for tune in tunes():
        rhymes = "".join(tune.rhyme_tones)
        print(f"{tune.name:10}{tune.traditional:>12}{tune.chars:>7}{len(tune.lines):>7}{rhymes:>8}   "
              f"{tune.poems}/{tune.total}")
    print("(rhymes: the tone of each rhyme set in order, 中 where level and oblique ends share one part; "
          "`vaekit poem tunes NAME` shows one tune's lines)")


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
    from vaekit.config import TRAIN_PRECISIONS
    from vaekit.data.poetry import FORMS, VERSE_FORMS
    from vaekit.models.config import CONDITIONINGS
    from vaekit.poetry.decode import MAX_BEAM, MAX_CANDIDATES, PARALLEL_BONUS, SAMPLING
    from vaekit.poetry.recipe import COMMON, FORM_RECIPE, PARALLEL_EPOCHS, POEM_EPOCHS, recipe_default
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
    p.add_argument("--batch-size", type=int, default=None,
                   help=f"poems a batch (default {COMMON['batch_size']}; ci {FORM_RECIPE['ci']['batch_size']})")
    p.add_argument("--lr", type=float, default=None, help=f"AdamW learning rate (default {recipe_default('lr')})")
    p.add_argument("--latent-dim", type=int, default=None, help=f"dimensions of z (default {COMMON['latent_dim']})")
    p.add_argument("--kl-warmup", type=float, default=None,
                   help=f"epochs over which the KL weight ramps to 1 (default {recipe_default('kl_warmup')})")
    p.add_argument("--themed", action="store_true",
                   help="train a CVAE over the poem's theme (read from its title: see vaekit.poetry.themes)")
    p.add_argument("--conditioning", choices=CONDITIONINGS, default=None,
                   help="themed (and ci, whose label is the tune): the label enters encoder, decoder and the prior's "
                        "mean (both, the default), encoder and decoder only (input, ci's default), or only the "
                        "prior's mean (prior)")
    p.add_argument("--recall", action="store_true",
                   help="train the model that tells poems back and walks between them (shipped as FORM-recall): every "
                        "character from z alone, at a high KL floor, so z carries the poem (recipe: "
                        "vaekit.poetry.recipe.RECALL)")
    p.add_argument("--quatrains-only", action="store_true",
                   help="quatrain forms: only true quatrains (the same as --no-regulated-halves --no-long-stanzas)")
    p.add_argument("--train-size", type=int, default=None, help="train on the first N poems only (quick runs)")
    p.add_argument("--max-minutes", type=float, default=None, help="stop after this many minutes, saving the model")
    p.add_argument("--seed", type=seed, default=0,
                   help="seed for the split, shuffling and initialisation")
    p.add_argument("--device", default=None, help="auto, cpu, cuda or mps")
    p.add_argument("--precision", choices=TRAIN_PRECISIONS, default=None,
                   help="of a training step's products: bf16 autocast (losses stay fp32), fp32, or auto: bf16 where "
                        "the device multiplies it in hardware, fp32 elsewhere")
    p.add_argument("--resume", action="store_true", help="continue the run in --run-dir from its last checkpoint")
    p.set_defaults(func=cmd_poem_train)

    p = psub.add_parser("check", help="judge a poem by the rules of verse: template, rhyme, 粘對, parallelism",
                        description="Judge a poem by the rules of regulated verse; exits 1 when a rule is broken, "
                                    "as a linter does.", formatter_class=HelpFormatter,
                        epilog="example: vaekit poem check 國破山河在，城春草木深。感時花濺淚，恨別鳥驚心。"
                               "烽火連三月，家書抵萬金。白頭搔更短，渾欲不勝簪。")
    p.add_argument("poem", help="the poem, in traditional characters (punctuation optional)")
    p.add_argument("--form", choices=VERSE_FORMS, default=None, help="default: the one its length implies")
    p.add_argument("--template", default="auto", help="judge against this template only (default: the best fit)")
    p.set_defaults(func=cmd_poem_check)

    p = psub.add_parser("tunes", help="the ci tunes (词牌) vaekit knows: lines, tones and rhymes",
                        description="List the ci tunes derived from the Song ci of the corpus, or show one.",
                        formatter_class=HelpFormatter, epilog="example: vaekit poem tunes 浣溪沙")
    p.add_argument("tune", nargs="?", help="show this tune's lines (simplified or traditional name)")
    p.set_defaults(func=cmd_poem_tunes)

    examples = {"write": "vaekit poem write --form quatrain7 --acrostic 春夏秋冬 --simplified",
                "reconstruct": "vaekit poem reconstruct 白日依山盡，黃河入海流。欲窮千里目，更上一層樓。",
                "interpolate": "vaekit poem interpolate 床前明月光疑是地上霜 舉頭望明月低頭思故鄉 --form couplet",
                "evaluate": "vaekit poem evaluate --form quatrain -n 1000 --out quatrain-metrics.json"}
    for name, fn, text in (("write", cmd_poem_write, "write new poems from random z, keeping the rules of verse"),
                           ("interpolate", cmd_poem_interpolate, "walk the latent line between two poems"),
                           ("reconstruct", cmd_poem_reconstruct, "tell a poem back from its posterior mean"),
                           ("evaluate", cmd_poem_evaluate, "rules of verse, repetition, copying, diversity and fit")):
        p = psub.add_parser(name, help=text, description=text, epilog=f"example: {examples[name]}",
                            formatter_class=HelpFormatter)
        shipped = ("the shipped model of this form that tells poems back, where it has one (default quatrain)"
                   if name in ("interpolate", "reconstruct") else "use the shipped model of this form (default quatrain)")
        p.add_argument("--form", choices=FORMS, default=None, help=shipped)
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
            p.add_argument("--max-uses", type=count(0, 120, zero=True), default=None,
                           help="a character at most this often in a poem (0: any number of times; default 2 in "
                                "verse, 3 in a ci)")
            p.add_argument("--parallel", type=nonnegative, default=PARALLEL_BONUS,
                           help="eight-line forms: nats a unit of learned association adds to a middle couplet's "
                                "second line, steering it parallel to the first (對仗); 0: off")
            p.add_argument("--acrostic", help="characters to head the lines, one a line (藏头诗), e.g. 春夏秋冬")
            p.add_argument("--first-line", help="a first line for the model to continue, e.g. 白日依山盡")
            p.add_argument("--keywords", help="characters that must appear, comma-separated, e.g. 月,山")
            p.add_argument("--simplified", action="store_true",
                           help="print simplified characters (OpenCC; the rules are kept on the traditional text)")
            p.add_argument("--tune", help="ci: the tune (词牌) to write to, e.g. 浣溪沙 or 浣溪沙's traditional name "
                                          "(`vaekit poem tunes` lists them; implies --form ci)")
            p.add_argument("--traditional", action="store_true",
                           help="ci: print traditional characters (OpenCC; ci are written in the corpus's simplified "
                                "ones)")
            p.add_argument("--free", action="store_true",
                           help="no rules at all: decode each position freely, as Su's model did")
            p.add_argument("--theme", choices=THEME_NAMES, default=None,
                           help="what the poem is about: uses the shipped themed model of the form (or a --themed run)")
        elif name == "interpolate":
            p.add_argument("first", help="the poem the walk starts from (punctuation optional)")
            p.add_argument("second", help="the poem it ends at")
            p.add_argument("--steps", type=count(2, 100), default=6, help="poems along the line, ends included")
            p.add_argument("--tune", help="ci: the tune both ci are written to (implies --form ci)")
            p.add_argument("--free", action="store_true",
                           help="decode each point's most likely characters without the rules of verse")
        elif name == "reconstruct":
            p.add_argument("poem", help="the poem to tell back (punctuation optional)")
            p.add_argument("--free", action="store_true",
                           help="decode the most likely characters without the rules of verse")
        else:
            p.add_argument("-n", type=count(2, MAX_CANDIDATES), default=1000,
                           help="poems to generate and score each way, and held-out poems to fit")
            p.add_argument("--temperature", type=temperature, default=SAMPLING.temperature, help="as for write (0: argmax)")
            p.add_argument("--corpus", help="folder or clone of the corpus")
            p.add_argument("--out", help="where to write the metrics JSON")
            p.add_argument("--themed", action="store_true", help="score the shipped themed model of the form")
            p.add_argument("--recall", action="store_true",
                           help="score the shipped model that tells the form's poems back (as reconstruct and "
                                "interpolate use)")
