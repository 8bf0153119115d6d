"""A small digit/clothing classifier shipped with vaekit: the yardstick for sample quality without Inception.

Its 64-d penultimate features give a Frechet distance between real and generated images (FID's formula
on a domain-appropriate network), and its predictions give a CVAE's conditional accuracy. The weights in
`vaekit/weights/` were trained by `scripts/train_classifier.py`, whose settings sit beside them in JSON.
"""

from __future__ import annotations

import json
import math
from importlib import resources
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import Tensor, nn

from vaekit.runs import atomic_save_weights, round_weights

__all__ = ["Classifier", "frechet_distance", "load_classifier", "classifier_path", "train_classifier",
           "feature_statistics", "conditional_accuracy"]

FEATURES = 64


class Classifier(nn.Module):
    """Two conv-pool stages (32, 64 channels), a 64-unit feature layer, and 10 logits."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(64 * 7 * 7, FEATURES), nn.ReLU(),
        )
        self.out = nn.Linear(FEATURES, num_classes)

    def features(self, x: Tensor) -> Tensor:
        """The 64-d representation used for Frechet distances."""
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.out(self.body(x))


def classifier_path(dataset: str) -> Path:
    """Where the shipped weights for `dataset` live (mnist or fashion-mnist)."""
    return Path(str(resources.files("vaekit") / "weights" / f"classifier-{dataset}.safetensors"))


def load_classifier(dataset: str, device: torch.device | str = "cpu") -> Classifier:
    """The shipped classifier for `dataset`, in eval mode; ValueError if vaekit ships none for it."""
    path = classifier_path(dataset)
    if not path.is_file():
        raise ValueError(f"vaekit ships no classifier for dataset {dataset!r} (only mnist and fashion-mnist); "
                         "sample-quality scores need one")
    model = Classifier()
    model.load_state_dict(load_file(str(path)))
    return model.to(device).eval()


@torch.no_grad()
def feature_statistics(classifier: Classifier, images: Tensor, batch_size: int = 1000) -> tuple[Tensor, Tensor]:
    """Mean and covariance (float64) of the classifier's features over a set of images."""
    device = next(classifier.parameters()).device
    feats = torch.cat([classifier.features(images[i:i + batch_size].to(device)).double().cpu()
                       for i in range(0, len(images), batch_size)])
    return feats.mean(0), torch.cov(feats.T)


def _sqrtm_psd(m: Tensor) -> Tensor:
    values, vectors = torch.linalg.eigh(m)
    return (vectors * values.clamp_min(0).sqrt()) @ vectors.T


def frechet_distance(mu1: Tensor, cov1: Tensor, mu2: Tensor, cov2: Tensor) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)), the Frechet distance between two Gaussians.

    Tr((S1 S2)^(1/2)) is computed as the sum of square roots of the eigenvalues of S1^(1/2) S2 S1^(1/2),
    which is symmetric positive semi-definite, so no complex square roots arise.
    """
    mu1, cov1, mu2, cov2 = (t.double() for t in (mu1, cov1, mu2, cov2))
    root = _sqrtm_psd(cov1)
    middle = torch.linalg.eigvalsh(root @ cov2 @ root).clamp_min(0).sqrt().sum()
    return float((mu1 - mu2).pow(2).sum() + torch.trace(cov1) + torch.trace(cov2) - 2 * middle)


@torch.no_grad()
def conditional_accuracy(classifier: Classifier, model: nn.Module, per_class: int = 100) -> float:
    """Share of samples drawn for label y that the classifier calls y, over all labels."""
    hits, total = 0, 0
    device = next(classifier.parameters()).device
    for label in range(model.config.num_classes):
        images = model.sample(per_class, label=label).to(device)
        hits += int((classifier(images).argmax(-1) == label).sum())
        total += per_class
    return hits / total


def train_classifier(dataset: str, out: Path, epochs: int = 4, batch_size: int = 128, lr: float = 2e-3,
                     seed: int = 0) -> dict[str, float]:
    """Train on the train split (grey levels and random binarizations mixed, so that both kinds of input
    are in-distribution), report validation and test accuracy, and save safetensors + JSON beside it."""
    from vaekit.data import BatchLoader, load_dataset

    torch.manual_seed(seed)
    data = load_dataset(dataset)
    model = Classifier()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    loader = BatchLoader(data.train.images, data.train.labels, batch_size, seed=seed)
    steps = epochs * len(loader)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    for epoch in range(epochs):
        loader.set_epoch(epoch)
        model.train()
        for x, y in loader:
            binary = torch.rand(len(x), 1, 1, 1) < 0.5
            x = torch.where(binary, torch.bernoulli(x), x)
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    round_weights(model, torch.float16)  # measured as shipped: stored in float16

    @torch.no_grad()
    def accuracy(images: Tensor, labels: Tensor) -> float:
        model.eval()
        return float((torch.cat([model(images[i:i + 1000]).argmax(-1) for i in range(0, len(images), 1000)])
                      == labels).float().mean())

    report = {"dataset": dataset, "epochs": epochs, "batch_size": batch_size, "lr": lr, "seed": seed,
              "valid_accuracy": accuracy(data.valid.images, data.valid.labels),
              "test_accuracy": accuracy(data.test.images, data.test.labels),
              "test_accuracy_binarized": accuracy(torch.bernoulli(data.test.images,
                                                                  generator=torch.Generator().manual_seed(0)),
                                                  data.test.labels),
              "parameters": sum(p.numel() for p in model.parameters()),
              "command": f"python scripts/train_classifier.py {dataset}"}
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_save_weights(model, out, dtype=torch.float16)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    assert math.isfinite(report["test_accuracy"])
    return report
