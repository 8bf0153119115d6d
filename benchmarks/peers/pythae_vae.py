"""Pythae's VAE with the MLP of pytorch/examples (784-400-20): trained by Pythae's own pipeline, or scored by its
own `get_nll`, for benchmarks/peers.py. Runs in the peers' virtual environment, where pythae is installed.

    python pythae_vae.py train DATA.npz OUT_DIR
    python pythae_vae.py nll DATA.npz WEIGHTS.npz K
"""

import json
import sys
import time

import numpy as np
import torch
from pythae.models import VAE, VAEConfig
from pythae.models.base.base_utils import ModelOutput
from pythae.models.nn import BaseDecoder, BaseEncoder
from torch import nn


class Encoder(BaseEncoder):
    def __init__(self):
        BaseEncoder.__init__(self)
        self.hidden, self.mu, self.log_var = nn.Linear(784, 400), nn.Linear(400, 20), nn.Linear(400, 20)

    def forward(self, x):
        h = torch.relu(self.hidden(x.reshape(-1, 784)))
        return ModelOutput(embedding=self.mu(h), log_covariance=self.log_var(h))


class Decoder(BaseDecoder):
    def __init__(self):
        BaseDecoder.__init__(self)
        self.hidden, self.out = nn.Linear(20, 400), nn.Linear(400, 784)

    def forward(self, z):
        return ModelOutput(reconstruction=torch.sigmoid(self.out(torch.relu(self.hidden(z)))).reshape(-1, 1, 28, 28))


def model() -> VAE:
    return VAE(VAEConfig(input_dim=(1, 28, 28), latent_dim=20, reconstruction_loss="bce"), Encoder(), Decoder())


def train(data: str, out: str) -> None:
    from pythae.pipelines import TrainingPipeline
    from pythae.trainers import BaseTrainerConfig

    arrays = np.load(data)
    train_x = arrays["train_images"][:50_000, None].astype(np.float32) / 255  # vaekit's split: 50k train, 10k valid
    valid_x = arrays["train_images"][50_000:, None].astype(np.float32) / 255
    config = BaseTrainerConfig(output_dir=out, num_epochs=1, learning_rate=1e-3, per_device_train_batch_size=128,
                               per_device_eval_batch_size=128, optimizer_cls="Adam", no_cuda=True)
    TrainingPipeline(training_config=config, model=model())(train_data=train_x, eval_data=valid_x)


def nll(data: str, weights: str, k: int) -> None:
    arrays, w = np.load(data), np.load(weights)
    vae = model()
    names = {"encoder.hidden": "encoder.net.0", "decoder.hidden": "decoder.net.0", "decoder.out": "decoder.net.2"}
    with torch.no_grad():
        for ours, theirs in names.items():
            vae.get_submodule(ours).weight.copy_(torch.from_numpy(w[f"{theirs}.weight"]))
            vae.get_submodule(ours).bias.copy_(torch.from_numpy(w[f"{theirs}.bias"]))
        for i, part in enumerate(("mu", "log_var")):  # vaekit's encoder emits [mu, logvar] from one layer
            getattr(vae.encoder, part).weight.copy_(torch.from_numpy(w["encoder.net.2.weight"][20 * i:20 * (i + 1)]))
            getattr(vae.encoder, part).bias.copy_(torch.from_numpy(w["encoder.net.2.bias"][20 * i:20 * (i + 1)]))
    x = torch.from_numpy(arrays["images"])
    torch.manual_seed(0)
    start = time.perf_counter()
    with torch.no_grad():
        value = vae.eval().get_nll(x, n_samples=k)
    seconds = time.perf_counter() - start
    print(json.dumps({"nll": -float(value), "seconds": seconds}))  # get_nll returns the mean log p(x)


if __name__ == "__main__":
    if sys.argv[1] == "train":
        train(sys.argv[2], sys.argv[3])
    else:
        nll(sys.argv[2], sys.argv[3], int(sys.argv[4]))
