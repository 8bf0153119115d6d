"""Train the small classifiers shipped in src/vaekit/weights/ (the sample-quality yardstick).

    python scripts/train_classifier.py mnist
    python scripts/train_classifier.py fashion-mnist
"""

import sys
from pathlib import Path

import torch

from vaekit.classifier import classifier_path, train_classifier

if __name__ == "__main__":
    torch.set_num_threads(max(1, torch.get_num_threads()))
    for name in sys.argv[1:] or ["mnist", "fashion-mnist"]:
        out = Path(__file__).resolve().parents[1] / "src" / "vaekit" / "weights" / classifier_path(name).name
        print(train_classifier(name, out))
