"""Train the theme classifier shipped in src/vaekit/poetry/shipped/themes/ (the themed CVAE's yardstick).

    python scripts/train_theme_classifier.py [--corpus DIR]

It learns the title rule of `vaekit.poetry.themes` from the texts of the five-character quatrain training
split (the same split as the poem models), and prints its accuracy on the held-out poems.
"""

import argparse
import json
from pathlib import Path

from vaekit.config import TrainConfig
from vaekit.poetry.task import split_items
from vaekit.poetry.themes import load_theme_classifier, theme_accuracy, train_theme_classifier
from vaekit.runs import atomic_write_text

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", default=None)
    args = parser.parse_args()
    config = TrainConfig.from_flat(task="poem", form="quatrain", corpus_dir=args.corpus)
    train, held = split_items(config)
    out = Path(__file__).resolve().parents[1] / "src" / "vaekit" / "poetry" / "shipped" / "themes"
    train_theme_classifier([t for t, _ in train], [c for _, c in train], out)
    classifier = load_theme_classifier(out)
    result = theme_accuracy(classifier, [t for t, _ in held], [c for _, c in held])
    meta = json.loads((out / "classifier.json").read_text(encoding="utf-8"))
    meta["held_out"] = {"poems": len(held), **result}
    atomic_write_text(out / "classifier.json", json.dumps(meta, ensure_ascii=False))
    print(json.dumps(meta["held_out"], indent=1))
