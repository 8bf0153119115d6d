"""A stand-in for the three pieces of torchvision that pytorch/examples' VAE imports (PyPI's torchvision build does
not import beside the pinned CPU torch wheel here). Each piece does the per-item work torchvision does, so the
peer is timed as its users run it: MNIST items become PIL images, ToTensor converts them one by one."""

from . import datasets, transforms, utils  # noqa: F401
