"""The usual text-VAE decoder (Bowman et al. 2016): a GRU whose first state and every input carry z, kept for the
comparison in docs/benchmarks.md."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from vaekit.poetry.decoders.base import Autoregressive, Model

__all__ = ["GRU"]


class GRU(Autoregressive):
    name = "gru"
    layer_names = ("gru", "to_state", "out_proj")

    def build(self, model: Model, code_dim: int, d: int, layers: int, dropout: float) -> None:
        model.gru = nn.GRU(d + code_dim, d, num_layers=layers, batch_first=True)
        model.to_state = nn.Linear(code_dim, layers * d)
        self.build_output(model, d)

    def run(self, model: Model, h: Tensor, code: Tensor, inputs: list[Tensor] | None) -> Tensor:
        state = torch.tanh(model.to_state(code)).view(len(code), model.gru.num_layers, -1).transpose(0, 1)
        out, _ = model.gru(torch.cat([h, code[:, None].expand(-1, h.shape[1], -1)], dim=-1), state.contiguous())
        return model.drop(out)
