"""The fused output layer: the same log-probabilities and gradients as log_softmax over F.linear, in chunks,
and no tensor past one chunk of logits, forward or backward."""

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

import vaekit.poetry.output as output
from vaekit.poetry.model import PoemVAE
from vaekit.poetry.output import linear_log_prob


def _plain(h, w, b, t):
    return torch.log_softmax(F.linear(h, w, b), -1).gather(1, t[:, None]).squeeze(1)


@pytest.mark.parametrize("chunk_rows", [1000, 7, 1])
def test_values_and_gradients_match_log_softmax_in_float64(monkeypatch, chunk_rows):
    monkeypatch.setattr(output, "CHUNK_BYTES", 4 * 37 * chunk_rows)  # rows of 37 classes a chunk
    torch.manual_seed(0)
    h = torch.randn(50, 16, dtype=torch.float64, requires_grad=True)
    w = torch.randn(37, 16, dtype=torch.float64, requires_grad=True)
    b = torch.randn(37, dtype=torch.float64, requires_grad=True)
    t = torch.randint(0, 37, (50,))
    t[:5] = 3  # one class the target of several rows: their gradients add up
    g = torch.randn(50, dtype=torch.float64)
    want = _plain(h, w, b, t)
    got = linear_log_prob(h, w, b, t)
    assert got.dtype == torch.float64 and torch.allclose(got, want, atol=1e-12)
    for a, c in zip(torch.autograd.grad(got, (h, w, b), g), torch.autograd.grad(want, (h, w, b), g), strict=True):
        assert torch.allclose(a, c, atol=1e-10)


def test_the_causal_likelihood_is_the_teacher_forced_softmax_with_the_same_gradients():
    torch.manual_seed(0)
    model = PoemVAE.build(60, latent_dim=8, embedding_dim=16, decoder="causal", decoder_layers=3).double()
    x, z = torch.randint(1, 60, (6, 20)), torch.randn(2, 6, 8, dtype=torch.float64)  # k=2 samples of 6 poems
    fused = model.likelihood(z).log_prob(x)
    states = model._causal_states(z.reshape(12, 8), x.repeat(2, 1)[:, :-1], None)  # causal_logits, in float64
    logits = F.linear(torch.tanh(model.out_proj(states)), model.embed.weight[:60], model.out_bias)
    plain = torch.log_softmax(logits, -1).gather(-1, x.repeat(2, 1)[..., None]).squeeze(-1).sum(-1).view(2, 6)
    assert fused.shape == (2, 6) and torch.allclose(fused, plain, atol=1e-10)
    params = [p for p in model.parameters() if p.requires_grad]
    for a, c in zip(torch.autograd.grad(fused.sum(), params, allow_unused=True),
                    torch.autograd.grad(plain.sum(), params, allow_unused=True), strict=True):
        assert (a is None) == (c is None) and (a is None or torch.allclose(a, c, atol=1e-9))


class _LargestTensor(TorchDispatchMode):
    """Records the bytes of the largest tensor any operation returns."""

    def __init__(self):
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, tuple | list) else (out,):
            if isinstance(t, torch.Tensor):
                self.largest = max(self.largest, t.numel() * t.element_size())
        return out


@pytest.mark.parametrize("grad", [False, True])
def test_no_tensor_outgrows_one_chunk_of_logits(grad):
    torch.manual_seed(0)
    rows, classes = 3000, 4000  # 48 MB of float32 logits written plainly
    h = torch.randn(rows, 32, requires_grad=grad)
    w, b = torch.randn(classes, 32, requires_grad=grad), torch.zeros(classes, requires_grad=grad)
    t = torch.randint(0, classes, (rows,))
    with _LargestTensor() as seen, torch.set_grad_enabled(grad):
        out = linear_log_prob(h, w, b, t)
        if grad:
            out.sum().backward()
    assert seen.largest <= output.CHUNK_BYTES
    with _LargestTensor() as plain:
        _plain(h.detach(), w.detach(), b.detach(), t)
    assert plain.largest == rows * classes * 4  # what the fused layer avoids


def test_shapes_are_checked():
    with pytest.raises(ValueError, match="target"):
        linear_log_prob(torch.randn(4, 3), torch.randn(5, 3), torch.zeros(5), torch.zeros(3, dtype=torch.long))


def test_the_onednn_products_change_poem_scores_and_decoding_only_in_rounding(monkeypatch):
    import vaekit.kernels as kernels

    torch.manual_seed(0)
    model = PoemVAE.build(60, latent_dim=8, embedding_dim=32, decoder="causal", decoder_layers=3).eval()
    x, z = torch.randint(1, 60, (16, 20)), torch.randn(16, 8)

    def outputs() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            step = model.step_decoder(z)
            logits = torch.stack([step(x[:, :t]) for t in range(20)], dim=1)
            return model.likelihood(z).log_prob(x), logits, model.greedy(z)

    fast = outputs()
    monkeypatch.setattr(kernels, "onednn_linear_available", lambda: False)  # torch's own products throughout
    plain = outputs()
    torch.testing.assert_close(fast[0], plain[0], rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(fast[1], plain[1], rtol=1e-5, atol=1e-4)
    assert torch.equal(fast[2], plain[2])
