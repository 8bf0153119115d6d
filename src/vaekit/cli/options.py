"""Argument types and the help formatter shared by every `vaekit` command: a bad value is one sentence."""

from __future__ import annotations

import argparse
import math
from typing import Any

__all__ = ["seed", "count", "temperature", "temperatures", "memory_size", "probability", "positive_number", "int_list",
           "HelpFormatter"]


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Each option's default after its help (when it has a meaningful one); descriptions and examples as written."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        shown = action.default not in (None, False, argparse.SUPPRESS) and action.option_strings
        if shown and "default" not in text:
            text += " (default: %(default)s)"
        return text


def count(low: int, high: int | None = None, zero: bool = False) -> Any:
    """An argparse type: an integer in [low, high] (or 0 when `zero`), refused with one sentence otherwise."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if (zero and value == 0) or (value >= low and (high is None or value <= high)):
            return value
        span = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise argparse.ArgumentTypeError(f"must be {span}{' (or 0)' if zero else ''}, got {value}")
    return parse


def seed(text: str) -> int:
    """An argparse type: a seed from 0 to vaekit.seeds.MAX_SEED."""
    from vaekit.seeds import MAX_SEED

    return count(0, MAX_SEED)(text)


def _finite_at_least_zero(text: str, hint: str = "") -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 <= value < math.inf:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0{hint}, got {text}")
    return value


def temperature(text: str) -> float:
    """An argparse type: a finite sampling temperature >= 0 (0 decodes by argmax)."""
    return _finite_at_least_zero(text, " (0 decodes by argmax)")


def temperatures(text: str) -> list[float]:
    """An argparse type: one sampling temperature >= 0, or comma-separated ones (one a latent group, top first)."""
    return [_finite_at_least_zero(part.strip(), " (one, or one a latent group: 1,0.8,0.6)")
            for part in text.split(",") if part.strip()] or [_finite_at_least_zero(text)]


def nonnegative(text: str) -> float:
    """An argparse type: a finite number >= 0."""
    return _finite_at_least_zero(text)


def memory_size(text: str) -> int:
    """An argparse type: a size such as 512MB or 2GB."""
    from vaekit.memory import parse_memory

    try:
        return parse_memory(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def probability(text: str) -> float:
    """An argparse type: a number in (0, 1]."""
    value = temperature(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text}")
    return value


def positive_number(text: str) -> float:
    """An argparse type: a finite number > 0."""
    value = temperature(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be greater than 0")
    return value


def int_list(text: str) -> list[int]:
    """An argparse type: comma-separated integers such as 512,256."""
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers like 512,256, got {text!r}") from None
