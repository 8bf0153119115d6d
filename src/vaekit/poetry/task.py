"""The poem task for the shared Trainer: corpus -> form -> held-out split -> vocabulary -> token tensors."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import Tensor

from vaekit.config import TrainConfig
from vaekit.data.errors import DataError
from vaekit.data.poetry import Vocabulary, extract_form, form_length, load_poems, to_simplified
from vaekit.poetry.model import PoemVAE

__all__ = ["PoemTask", "HELD_OUT_FRACTION", "split_texts", "poem_model_for_run", "load_vocabulary", "save_line_set"]

HELD_OUT_FRACTION = 0.05
VOCAB_FILE = "vocab.json"
SPLIT_FILE = "held_out.json"


def split_texts(texts: list[str], seed: int) -> tuple[list[str], list[str]]:
    """A held-out 5% (at least one) fixed by seed; the rest for training."""
    order = torch.randperm(len(texts), generator=torch.Generator().manual_seed(seed)).tolist()
    n_held = max(1, int(round(HELD_OUT_FRACTION * len(texts))))
    held = [texts[i] for i in order[:n_held]]
    train = [texts[i] for i in order[n_held:]]
    return train, held


def corpus_texts(config: TrainConfig) -> list[str]:
    """All texts of the configured form (simplified if asked).

    For quatrains, `regulated_halves` adds both four-line halves of every regulated poem: stanzas of the
    same shape that also rhyme on their even lines, 29k of them beside the corpus's 3,956 true five-character
    quatrains (16k beside the 10,580 seven-character ones).
    """
    poems = load_poems(config.corpus_dir)
    texts = extract_form(poems, config.form)
    if config.form in ("quatrain", "quatrain7") and config.regulated_halves:
        regulated = "regulated" if config.form == "quatrain" else "regulated7"
        half = form_length(config.form)
        texts += [part for t in extract_form(poems, regulated) for part in (t[:half], t[half:])]
    if not texts:
        raise DataError(f"{config.corpus_dir or 'the corpus'}: no {config.form} poems found; check --corpus")
    return to_simplified(texts) if config.simplified else texts


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
        self.length = form_length(config.form)
        train_texts, held_texts = split_texts(corpus_texts(config), config.seed)
        if config.train_size is not None:
            train_texts = train_texts[: config.train_size]
        self.vocab = load_vocabulary(run_dir) if run_dir is not None else Vocabulary.build(train_texts, config.min_count)
        self.train_texts, self.held_texts = train_texts, held_texts
        x = self.vocab.encode(train_texts)
        held = self.vocab.encode(held_texts[: config.eval_size] if config.eval_size else held_texts)
        self.train = (x, torch.zeros(len(x), dtype=torch.long))
        self.valid = (held, torch.zeros(len(held), dtype=torch.long))
        config.image_shape = None
        config.num_classes = 1

    def build_model(self) -> PoemVAE:
        return poem_model(self.config, len(self.vocab))

    def prepare(self, x: Tensor, epoch: int) -> Tensor:
        return x

    def save(self, run_dir: Path) -> None:
        """The vocabulary, and the hashes of the training lines (generated poems must not copy one)."""
        from vaekit.runs import atomic_write_text

        atomic_write_text(run_dir / VOCAB_FILE, self.vocab.to_json())
        save_line_set(self.train_texts, run_dir)


def save_line_set(train_texts: list[str], run_dir: Path) -> None:
    """Write LINES_FILE: the hashes of every training line, for the decoder's no-copy rule."""
    from vaekit.poetry.decode import LINES_FILE, LineSet
    from vaekit.poetry.verse import lines_of_text

    LineSet.from_lines([line for t in train_texts for line in lines_of_text(t)]).save(run_dir / LINES_FILE)


def poem_model(config: TrainConfig, vocab_size: int) -> PoemVAE:
    return PoemVAE(vocab_size, form_length(config.form), latent_dim=config.latent_dim,
                   embedding_dim=config.embedding_dim, encoder_layers=config.encoder_layers,
                   decoder_layers=config.decoder_layers, beta=config.beta, kl=config.kl, decoder=config.decoder,
                   free_bits=config.free_bits)


def poem_model_for_run(config: TrainConfig, run_dir: Path) -> PoemVAE:
    """The model of a saved poem run, with its vocabulary attached as `.vocab` and its settings as `.run_config`."""
    vocab = load_vocabulary(run_dir)
    model = poem_model(config, len(vocab))
    model.vocab = vocab
    model.run_config = config
    return model
