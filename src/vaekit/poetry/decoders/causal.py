"""The causal decoder: character t from z and the characters before it, through left-padded dilated gated
convolutions with z entering every layer (after Yang et al. 2017), so line 4 can agree with line 2. Writing keeps
each layer's past inputs (`CausalStepper`), so a character costs one position a layer."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vaekit import kernels
from vaekit.poetry.decoders.base import Autoregressive, Model

__all__ = ["Causal", "CausalGatedConv", "CausalStepper"]


class CausalGatedConv(nn.Module):
    """x + a * sigmoid(b), [a, b] = dilated conv1d(x padded on the left) + W z: position t sees only t and before."""

    def __init__(self, channels: int, code_dim: int, dilation: int, kernel: int = 3, dropout: float = 0.0):
        super().__init__()
        self.pad = (kernel - 1) * dilation
        self.conv = nn.Conv1d(channels, 2 * channels, kernel, dilation=dilation)
        self.from_z = nn.Linear(code_dim, 2 * channels)
        self.drop = nn.Dropout(dropout)  # on the residual branch, in training

    def forward(self, x: Tensor, z: Tensor) -> Tensor:  # x: (N, d, T), z: (N, code)
        # the convolution's bias joins the z term: a dilated conv1d with a bias takes a path ~7x slower at batch 1
        shift = F.linear(z, self.from_z.weight, self.from_z.bias + self.conv.bias)
        h = F.conv1d(F.pad(x, (self.pad, 0)), self.conv.weight, None, dilation=self.conv.dilation)
        a, b = (h + shift[:, :, None]).chunk(2, dim=1)
        return x + self.drop(a * torch.sigmoid(b))


class Causal(Autoregressive):
    name = "causal"
    layer_names = ("causal", "out_proj")

    def build(self, model: Model, code_dim: int, d: int, layers: int, dropout: float) -> None:
        # dilations 1, 2, 4, 8, 16, 1, ... widen the view to the whole poem
        model.causal = nn.ModuleList(CausalGatedConv(d, code_dim, 2 ** (i % 5), dropout=dropout) for i in range(layers))
        self.build_output(model, d)

    def run(self, model: Model, h: Tensor, code: Tensor, inputs: list[Tensor] | None) -> Tensor:
        h = h.transpose(1, 2)
        for layer in model.causal:
            if inputs is not None:
                inputs.append(h)
            h = layer(h, code)
        return h.transpose(1, 2)

    def step_decoder(self, model: Model, z: Tensor, y: Tensor | None) -> Callable[[Tensor], Tensor]:
        if not model.training:
            return CausalStepper(model, z, y)
        return super().step_decoder(model, z, y)


class CausalStepper:
    """The causal decoder's `step_decoder`: it keeps every layer's past inputs, so that a prefix one character
    longer than the last one costs one position per layer instead of a pass over the whole prefix (as fast
    WaveNet generation does). Rows may come back reordered (beam search), among rows of the same z; any other
    prefix takes the full pass, which also refills what is kept. Either way the logits are the full pass's.
    """

    def __init__(self, model: Model, z: Tensor, y: Tensor | None = None):
        self.model, self.z, self.y = model, z, y
        self.code = model._code(z, y)
        # rows whose z is the same may stand in for one another when rows are reordered
        self.same_z = torch.unique(self.code, dim=0, return_inverse=True)[1].tolist()
        self.taps = [(layer.conv.weight.flatten(1), layer.conv.dilation[0], layer.conv.weight.shape[2],  # a view
                      F.linear(self.code, layer.from_z.weight, layer.from_z.bias + layer.conv.bias))
                     for layer in model.causal]
        self.prefix: list[tuple[int, ...]] | None = None
        self.inputs: list[Tensor] = []  # layer i's input (B, d, t+1) at positions 0..t; the last entry its output

    def __call__(self, prefix: Tensor) -> Tensor:
        rows = [tuple(r) for r in prefix.tolist()]
        order = self._rows_kept(rows)
        if order is None:
            inputs: list[Tensor] = []
            states = self.model._causal_states(self.z, prefix, self.y, inputs)
            self.inputs = [*inputs, states.transpose(1, 2)]
        else:
            if order != list(range(len(order))):
                index = torch.tensor(order, device=prefix.device)
                self.inputs = [h.index_select(0, index) for h in self.inputs]
            self._advance(prefix[:, -1])
        self.prefix = rows
        return self.model._output(self.inputs[-1][:, :, -1])

    def _rows_kept(self, rows: list[tuple[int, ...]]) -> list[int] | None:
        """For each row, the kept row (of the same z) it extends by one character; None if one has none."""
        if self.prefix is None or not rows or len(rows[0]) != len(self.prefix[0]) + 1 or len(rows) != len(self.z):
            return None
        kept = {(self.same_z[i], p): i for i, p in enumerate(self.prefix)}
        order = [kept.get((self.same_z[i], r[:-1])) for i, r in enumerate(rows)]
        return None if None in order else order  # type: ignore[return-value]

    def _advance(self, last: Tensor) -> None:
        """Append one position to every layer: its input there and the K taps back along its dilation."""
        h = self.model.embed(last)  # (B, d): the character just read
        grown = []
        for (weight, dilation, kernel, shift), past in zip(self.taps, self.inputs, strict=False):
            past = torch.cat([past, h[:, :, None]], dim=2)
            grown.append(past)
            t = past.shape[2] - 1
            taps = [past[:, :, t - j * dilation] if t >= j * dilation else torch.zeros_like(h)
                    for j in range(kernel - 1, -1, -1)]  # weight tap k reads position t - (K - 1 - k) * dilation
            # (B, C, K) flattened as the weight's (2C, C, K) is: channel-major, taps within
            a, b = kernels.linear(torch.stack(taps, dim=2).flatten(1), weight).add_(shift).chunk(2, dim=1)
            h = h + a * torch.sigmoid(b)
        grown.append(torch.cat([self.inputs[-1], h[:, :, None]], dim=2))
        self.inputs = grown
