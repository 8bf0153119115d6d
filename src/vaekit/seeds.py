"""The range of a seed, in one place: numpy's generators and the data split take 32-bit seeds, and a larger
one would fail deep inside torch with a message naming no setting."""

from __future__ import annotations

__all__ = ["MAX_SEED", "check_seed"]

MAX_SEED = 2**32 - 1


def check_seed(value: object, name: str = "seed") -> int:
    """`value` if it is a whole number from 0 to MAX_SEED; ValueError naming `name` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SEED:
        raise ValueError(f"{name} must be a whole number from 0 to {MAX_SEED:,}; got {value!r}")
    return value
