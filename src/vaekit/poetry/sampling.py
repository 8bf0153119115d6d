"""Drawing characters from (n, V) probabilities: one draw a row, and the top-p (nucleus) head.

`torch.multinomial` and a full sort of every row cost more than the decoder's own step when poems are
written 100 at a time over a 6,500-character vocabulary, so both are done here with an inverse-CDF draw
(one uniform a row, a cumulative sum and a binary search) and a top-k head that falls back to sorting only
the rows whose nucleus is wider than the head. The distributions are exactly the ones sampled before.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["categorical", "nucleus_sample", "HEAD"]

HEAD = 512  # characters taken by top-k before sorting a row whole (the nucleus at top-p 0.95 is ~200 at median)


def categorical(probs: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """(n,) one index a row of non-negative (n, V) weights (need not sum to 1), drawn by inverse CDF.

    A draw u in [0, total) lands on the first index whose cumulative weight exceeds it, so an index of
    weight 0 is never drawn.
    """
    cdf = probs.double().cumsum(-1)
    u = torch.rand(len(cdf), 1, generator=generator, dtype=torch.float64) * cdf[:, -1:]
    return torch.searchsorted(cdf, u, right=True).clamp_max(cdf.shape[-1] - 1).squeeze(-1)


def _head(sorted_probs: Tensor, top_p: float) -> Tensor:
    """The descending probabilities with everything past the smallest head whose mass reaches top_p zeroed."""
    return sorted_probs * (sorted_probs.cumsum(-1) - sorted_probs < top_p)


def nucleus_sample(probs: Tensor, top_p: float, generator: torch.Generator | None = None) -> Tensor:
    """(n,) one index a row of (n, V) probabilities (rows summing to 1), drawn from the smallest set of most
    likely entries whose mass reaches top_p (all of them at top_p 1)."""
    if top_p >= 1.0:
        return categorical(probs, generator)
    values, order = probs.topk(min(HEAD, probs.shape[-1]), dim=-1)  # descending, as a sort's head
    picks = order.gather(-1, categorical(_head(values, top_p), generator)[:, None]).squeeze(-1)
    wide = (values.sum(-1) < top_p).nonzero().squeeze(-1)  # rows whose nucleus is wider than the head
    if len(wide) and values.shape[-1] < probs.shape[-1]:
        values, order = probs[wide].sort(dim=-1, descending=True)
        picks[wide] = order.gather(-1, categorical(_head(values, top_p), generator)[:, None]).squeeze(-1)
    return picks
