"""torchvision.datasets.MNIST over the arrays benchmarks/peers.py exported (PEER_MNIST_NPZ): same items, same path."""

import os

import numpy as np
import torch
from PIL import Image


class MNIST(torch.utils.data.Dataset):
    """60,000 training or 10,000 test digits; __getitem__ as torchvision's: a PIL image through the transform."""

    def __init__(self, root, train=True, transform=None, target_transform=None, download=False):
        arrays = np.load(os.environ["PEER_MNIST_NPZ"])
        split = "train" if train else "test"
        self.data = torch.from_numpy(arrays[f"{split}_images"])
        self.targets = torch.from_numpy(arrays[f"{split}_labels"]).long()
        self.transform, self.target_transform = transform, target_transform

    def __len__(self):
        return len(self.data)

    def __getitem__(self, index):
        img, target = self.data[index], int(self.targets[index])
        img = Image.fromarray(img.numpy(), mode="L")
        if self.transform is not None:
            img = self.transform(img)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return img, target
