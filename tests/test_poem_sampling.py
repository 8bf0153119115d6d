"""The character sampler: inverse-CDF draws and the top-p head follow the distributions they claim."""

import torch

from vaekit.poetry.sampling import HEAD, categorical, nucleus_sample


def _nucleus(probs: torch.Tensor, top_p: float) -> torch.Tensor:
    """The top-p distribution of one row, by a full sort (the definition)."""
    values, order = probs.sort(descending=True)
    keep = values.cumsum(-1) - values < top_p
    out = torch.zeros_like(probs).scatter(-1, order, values * keep)
    return out / out.sum()


def test_categorical_frequencies_match_the_weights_and_skip_zeros():
    weights = torch.tensor([[0.0, 3.0, 0.0, 1.0, 6.0, 0.0]])  # unnormalised, with zeros at both ends
    g = torch.Generator().manual_seed(0)
    draws = categorical(weights.expand(200_000, -1), g)
    freq = torch.bincount(draws, minlength=6).double() / len(draws)
    assert freq[[0, 2, 5]].sum() == 0
    assert torch.allclose(freq, (weights[0] / weights.sum()).double(), atol=0.005)


def test_nucleus_sample_keeps_the_head_and_its_proportions():
    # a peaked row (its nucleus fits the top-k head) and a flat one (wider than the head: sorted whole)
    vocab = 4 * HEAD
    peaked = torch.softmax(torch.linspace(16, 0, vocab), -1)
    flat = torch.softmax(torch.linspace(0.5, 0, vocab), -1)
    g = torch.Generator().manual_seed(1)
    for row in (peaked, flat):
        expected = _nucleus(row, 0.9)
        draws = nucleus_sample(row.expand(100_000, -1).contiguous(), 0.9, g)
        freq = torch.bincount(draws, minlength=vocab).float() / len(draws)
        assert freq[expected == 0].sum() == 0  # nothing outside the nucleus
        assert (expected > 0).sum() > 1
        binned = (freq - expected).view(-1, 64).sum(-1)  # 64 neighbouring characters a bin, against noise
        assert binned.abs().sum() < 0.03  # total variation between the binned distributions, 100,000 draws
    assert (_nucleus(flat, 0.9) > 0).sum() > HEAD and (_nucleus(peaked, 0.9) > 0).sum() < HEAD


def test_nucleus_sample_mixes_rows_of_both_kinds_in_one_batch():
    vocab = 4 * HEAD
    peaked = torch.softmax(torch.linspace(16, 0, vocab), -1)
    flat = torch.softmax(torch.linspace(0.5, 0, vocab), -1)
    rows = torch.stack([peaked, flat] * 2000)
    draws = nucleus_sample(rows, 0.9, torch.Generator().manual_seed(2))
    for i, row in enumerate((peaked, flat)):
        assert bool((_nucleus(row, 0.9)[draws[i::2]] > 0).all())
    assert draws[1::2].float().mean() > draws[0::2].float().mean() * 2  # the flat rows reach far deeper


def test_top_p_one_samples_the_whole_distribution():
    probs = torch.softmax(torch.randn(3, 50, generator=torch.Generator().manual_seed(3)), -1)
    a = nucleus_sample(probs, 1.0, torch.Generator().manual_seed(4))
    b = categorical(probs, torch.Generator().manual_seed(4))
    assert torch.equal(a, b)
