"""The poem task for the shared Trainer: corpus -> form -> held-out split -> vocabulary -> token tensors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import Tensor

from vaekit.callbacks import Callback
from vaekit.config import TrainConfig
from vaekit.data.errors import DataError
from vaekit.data.poetry import (
    CI,
    CI_LENGTH,
    CI_PAD,
    FORM_CHARS,
    Poem,
    Vocabulary,
    extract_form,
    extract_stanzas,
    form_length,
    is_han,
    load_ci,
    load_poems,
    to_simplified,
)
from vaekit.poetry.model import PoemVAE
from vaekit.poetry.themes import OTHER, THEME_NAMES, THEMES, theme_of
from vaekit.poetry.verse import lines_of_text

__all__ = ["PoemTask", "HELD_OUT_FRACTION", "split_texts", "corpus_items", "long_stanza_items",
           "split_items", "poem_model_for_run", "load_vocabulary", "save_line_set", "ci_items", "item_lines"]

HELD_OUT_FRACTION = 0.05
T = TypeVar("T")
VOCAB_FILE = "vocab.json"
SPLIT_FILE = "held_out.json"


def split_texts(texts: list[T], seed: int) -> tuple[list[T], list[T]]:
    """A held-out 5% (at least one) fixed by seed; the rest for training."""
    order = torch.randperm(len(texts), generator=torch.Generator().manual_seed(seed)).tolist()
    n_held = max(1, int(round(HELD_OUT_FRACTION * len(texts))))
    held = [texts[i] for i in order[:n_held]]
    train = [texts[i] for i in order[n_held:]]
    return train, held


def corpus_items(config: TrainConfig, poems: list[Poem] | None = None) -> list[tuple[str, int]]:
    """All (text, theme) pairs of the configured form (simplified if asked); the theme follows the title.

    For quatrains, `regulated_halves` adds both four-line halves of every regulated poem: stanzas of the
    same shape that also rhyme on their even lines, 29k of them beside the corpus's 3,956 true five-character
    quatrains (16k beside the 10,580 seven-character ones).
    """
    poems = load_poems(config.poem.corpus_dir) if poems is None else poems
    items = [(t, theme_of(p.title)) for p in poems for t in extract_form([p], config.poem.form)]
    if config.poem.form in ("quatrain", "quatrain7") and config.poem.regulated_halves:
        regulated = "regulated" if config.poem.form == "quatrain" else "regulated7"
        half = form_length(config.poem.form)
        items += [(part, theme_of(p.title)) for p in poems for t in extract_form([p], regulated)
                  for part in (t[:half], t[half:])]
    if not items:
        raise DataError(f"{config.poem.corpus_dir or 'the corpus'}: no {config.poem.form} poems found; "
                        "check --corpus")
    return _simplified(config, items)


def long_stanza_items(config: TrainConfig, poems: list[Poem] | None = None) -> list[tuple[str, int]]:
    """(text, `other`) of every four-line stanza of the longer poems of the form's line length (quatrain forms).

    These only ever train: the held-out poems stay the quatrains and regulated halves that `corpus_items` splits,
    so models trained with and without them are measured on the same poems. They take the catch-all theme, not
    their title's: a middle stanza of a long poem carries its title's theme too faintly to teach the themed CVAE
    what the theme looks like (labelled by title, the CVAE wrote to its theme less often: docs/history.md).
    """
    if config.poem.form not in ("quatrain", "quatrain7"):
        return []
    poems = load_poems(config.poem.corpus_dir) if poems is None else poems
    items = [(t, OTHER) for _, t in extract_stanzas(poems, FORM_CHARS[config.poem.form])]
    return _simplified(config, items)


def _simplified(config: TrainConfig, items: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """The items in simplified characters when the run asks for them (OpenCC), else as they are."""
    if config.poem.simplified and items:
        return list(zip(to_simplified([t for t, _ in items]), [c for _, c in items], strict=True))
    return items


def ci_items(config: TrainConfig) -> list[tuple[str, int]]:
    """(text padded to CI_LENGTH, tune index) of every Song ci written to a shipped tune in its dominant shape."""
    from vaekit.poetry.tunes import ci_text, find_tune, tunes

    index = {tune.name: i for i, tune in enumerate(tunes())}
    items = []
    for ci in load_ci(config.poem.corpus_dir):
        try:
            tune = find_tune(ci.tune)
        except ValueError:  # a tune vaekit does not write
            continue
        text = ci_text(ci.paragraphs, tune)
        if text is not None and is_han(text):
            items.append((text.ljust(CI_LENGTH, CI_PAD), index[tune.name]))
    if not items:
        raise DataError(f"{config.poem.corpus_dir or 'the corpus'}: no ci of the shipped tunes found; run `vaekit poem "
                        "fetch` again (a corpus fetched before vaekit read the Song ci holds the poems only)")
    return items


def item_lines(config: TrainConfig, items: list[tuple[str, int]]) -> list[str]:
    """Every line of these items: a verse form's fixed lines, or a ci's lines by its tune (its label)."""
    if config.poem.form != CI:
        return [line for t, _ in items for line in lines_of_text(t)]
    from vaekit.poetry.tunes import tunes

    shipped = tunes()
    return [line for t, label in items for line in shipped[label].split(t)]


def split_items(config: TrainConfig) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """The run's (training, held-out) (text, theme) items: the form's Tang poems split by seed; with `long_stanzas`
    the stanzas of longer poems, and with `song` the Song poems of the form (and their stanzas), added to training.

    Whatever is added only trains, and a text equal to a held-out poem stays out, so the held-out poems are the
    same Tang poems with and without the additions.
    """
    if config.poem.form == CI:  # the tune is the label; nothing beside the Song ci trains
        return split_texts(ci_items(config), config.run.seed)
    poems = load_poems(config.poem.corpus_dir)
    train_items, held_items = split_texts(corpus_items(config, poems), config.run.seed)
    extra = long_stanza_items(config, poems) if config.poem.long_stanzas else []
    if config.poem.song:
        song = load_poems(config.poem.corpus_dir, "song")
        extra += corpus_items(config, song) + (long_stanza_items(config, song) if config.poem.long_stanzas else [])
    held_set = {t for t, _ in held_items}
    train_items += [item for item in extra if item[0] not in held_set]
    return train_items, held_items


def load_vocabulary(run_dir: Path) -> Vocabulary:
    path = run_dir / VOCAB_FILE
    try:
        return Vocabulary.from_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path}: missing; a poem run keeps its vocabulary there (retrain, or copy it back)") from None
    except (json.JSONDecodeError, KeyError) as e:
        raise DataError(f"{path}: not a vaekit vocabulary ({e}); retrain or restore it") from None


class PoemTask:
    """Fixed-length token sequences of one form; the vocabulary comes from the training split only."""

    def __init__(self, config: TrainConfig, run_dir: Path | None = None):
        self.config = config
        self.length = form_length(config.poem.form)
        train_items, held_items = split_items(config)
        if config.poem.train_size is not None:
            train_items = train_items[: config.poem.train_size]
        train_texts, held_texts = [t for t, _ in train_items], [t for t, _ in held_items]
        themed = config.model.model == "cvae"  # the themed CVAE: the title's theme (a ci's tune) is the label
        self.vocab = (load_vocabulary(run_dir) if run_dir is not None else
                      Vocabulary.build(train_texts, config.poem.min_count))
        self.train_texts, self.held_texts = train_texts, held_texts
        x = self.vocab.encode(train_texts)
        held_items = held_items[: config.poem.eval_size] if config.poem.eval_size else held_items
        held = self.vocab.encode([t for t, _ in held_items])
        self.train = (x, torch.tensor([c for _, c in train_items]) if themed else torch.zeros(len(x), dtype=torch.long))
        self.valid = (held, torch.tensor([c for _, c in held_items]) if themed else
                      torch.zeros(len(held), dtype=torch.long))
        config.model.image_shape = None
        self.lines = item_lines(config, train_items)
        if config.poem.form == CI:
            from vaekit.poetry.tunes import tunes

            if not themed:
                raise DataError("a ci model is a CVAE over the tunes; train it with `vaekit poem train --form ci` "
                                "(the model cvae)")
            names = [t.name for t in tunes()]
            config.model.num_classes, config.class_names = len(names), names
            return
        config.model.num_classes = len(THEMES) if themed else 1
        config.class_names = list(THEME_NAMES) if themed else None

    def build_model(self) -> PoemVAE:
        return poem_model(self.config, len(self.vocab))

    def prepare(self, x: Tensor, epoch: int) -> Tensor:
        return x

    @property
    def kl_delay_epochs(self) -> float:
        """Epochs trained as an autoencoder before the KL term is turned on (Li et al. 2019's pre-training)."""
        return self.config.poem.ae_pretrain

    def describe(self) -> list[str]:
        return []

    def callbacks(self) -> list[Callback]:
        """After the autoencoder pre-training, the decoder starts again (the encoder keeps what it learned)."""
        return [DecoderReset()] if self.config.poem.ae_pretrain > 0 else []

    def save(self, run_dir: Path) -> None:
        """The vocabulary, and the hashes of the training lines (generated poems must not copy one)."""
        from vaekit.runs import atomic_write_text

        atomic_write_text(run_dir / VOCAB_FILE, self.vocab.to_json())
        save_line_set(self.lines, run_dir)


class DecoderReset(Callback):
    """Re-initialise the poem decoder on the step the KL is turned on (Li et al. 2019)."""

    def on_step_end(self, trainer: Any, result: Any) -> None:
        if trainer.step == trainer.kl_delay_steps:
            trainer.model.reset_decoder()


def save_line_set(lines: list[str], run_dir: Path) -> None:
    """Write LINES_FILE: the hashes of every training line, for the decoder's no-copy rule."""
    from vaekit.poetry.decode import LINES_FILE, LineSet

    LineSet.from_lines(lines).save(run_dir / LINES_FILE)


def poem_model(config: TrainConfig, vocab_size: int) -> PoemVAE:
    """The poem model a run's settings describe (a themed CVAE when the run's model is cvae)."""
    assert config.poem is not None, "a poem run has a poem section"
    return PoemVAE(config.poem, config.model, vocab_size)


def poem_model_for_run(config: TrainConfig, run_dir: Path) -> PoemVAE:
    """The model of a saved poem run, with its vocabulary attached as `.vocab` and its settings as `.run_config`."""
    vocab = load_vocabulary(run_dir)
    model = poem_model(config, len(vocab))
    model.vocab = vocab
    model.run_config = config
    return model
