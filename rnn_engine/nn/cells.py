"""Vanilla RNN, GRU and LSTM cells written from their equations, with PyTorch's parameter layout."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from .checks import check_cell_arguments, check_cell_call
from .precision import low_matmul

GATES = {"rnn": 1, "gru": 3, "lstm": 4}


def _hidden_side(h: Tensor, w_hh_t: Tensor, b_hh: Tensor | None, low: Tensor | None) -> Tensor:
    """h W_hh^T (+ b_hh); with `low`, w_hh_t's bf16 copy, the GEMM reads bf16 (precision.py)."""
    if low is not None:
        return low_matmul(h, w_hh_t, low) + (0 if b_hh is None else b_hh)
    return h @ w_hh_t if b_hh is None else torch.addmm(b_hh, h, w_hh_t)


def _preactivation(gi: Tensor, h: Tensor, w_hh_t: Tensor, b_hh: Tensor | None, low: Tensor | None) -> Tensor:
    """gi + h W_hh^T (+ b_hh); with b_hh already folded into gi and fp32 GEMMs, a single addmm."""
    if b_hh is None and low is None:
        return torch.addmm(gi, h, w_hh_t)
    return gi + _hidden_side(h, w_hh_t, b_hh, low)


def rnn_step(gi: Tensor, h: Tensor, w_hh_t: Tensor, b_hh: Tensor | None, relu: bool,
             low: Tensor | None = None) -> Tensor:
    """One vanilla RNN step; `gi` is the input projection W_ih x + b_ih (b_hh too when b_hh is None)."""
    pre = _preactivation(gi, h, w_hh_t, b_hh, low)
    return torch.relu(pre) if relu else torch.tanh(pre)


def gru_step(gi: Tensor, h: Tensor, w_hh_t: Tensor, b_hh: Tensor | None,
             low: Tensor | None = None) -> Tensor:
    """One GRU step, gates r, z, n; the reset gate scales (W_hn h + b_hn) as torch does."""
    gh = _hidden_side(h, w_hh_t, b_hh, low)
    i_r, i_z, i_n = gi.chunk(3, dim=-1)
    h_r, h_z, h_n = gh.chunk(3, dim=-1)
    r = torch.sigmoid(i_r + h_r)
    z = torch.sigmoid(i_z + h_z)
    n = torch.tanh(i_n + r * h_n)
    # h' = (1 - z) * n + z * h, written so that it is one fused lerp
    return torch.lerp(n, h, z)


def lstm_step(
    gi: Tensor, h: Tensor, c: Tensor, w_hh_t: Tensor, b_hh: Tensor | None, low: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """One LSTM step, gates i, f, g, o; returns (h', c'). b_hh may be pre-added to gi."""
    gates = _preactivation(gi, h, w_hh_t, b_hh, low)
    i, f, g, o = gates.chunk(4, dim=-1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    h = torch.sigmoid(o) * torch.tanh(c)
    return h, c


class _Cell(nn.Module):
    """Shared parameter layout of the three cells (weight_ih, weight_hh, bias_ih, bias_hh).

    Each takes what torch's cell takes: a batch (B, input_size) with states (B, hidden_size), or
    one unbatched input (input_size,) with states (hidden_size,), and refuses what it refuses
    with its exception types and words (checks.py).
    """

    mode = "rnn"

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        check_cell_arguments(input_size, hidden_size)
        g = GATES[self.mode] * hidden_size
        factory = {"device": device, "dtype": dtype}
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        self.weight_ih = nn.Parameter(torch.empty(g, input_size, **factory))
        self.weight_hh = nn.Parameter(torch.empty(g, hidden_size, **factory))
        if bias:
            self.bias_ih = nn.Parameter(torch.empty(g, **factory))
            self.bias_hh = nn.Parameter(torch.empty(g, **factory))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if not self.bias:
            s += ", bias=False"
        return s + (f", nonlinearity={self.nonlinearity!r}" if getattr(self, "nonlinearity", "tanh") != "tanh"
                    else "")

    def reset_parameters(self) -> None:
        # the same U(-1/sqrt(H), 1/sqrt(H)) torch uses, so untrained models behave alike
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def _project(self, x: Tensor) -> Tensor:
        if self.bias_ih is None:
            return x @ self.weight_ih.t()
        return torch.addmm(self.bias_ih, x, self.weight_ih.t())

    def _batched(self, x: Any, states: tuple[Any, ...]) -> tuple[Tensor, list[Tensor], bool]:
        """Checked input and states as a batch (zeros for states not given), and whether it was one."""
        given = tuple(h for h in states if h is not None)
        check_cell_call(type(self).__name__, x, given, self.input_size, self.hidden_size, self.weight_ih)
        batched = x.dim() == 2
        if not batched:
            x, given = x.unsqueeze(0), tuple(h.unsqueeze(0) for h in given)
        if not given:
            zeros = x.new_zeros(x.shape[0], self.hidden_size)
            given = (zeros,) * len(states)
        return x, list(given), batched


class RNNCell(_Cell):
    """Elman cell: h' = act(W_ih x + b_ih + W_hh h + b_hh), act in {tanh, relu}."""

    mode = "rnn"

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh",
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'.")
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, bias, device, dtype)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        x, (h,), batched = self._batched(input, (hx,))
        relu = self.nonlinearity == "relu"
        h = rnn_step(self._project(x), h, self.weight_hh.t(), self.bias_hh, relu)
        return h if batched else h.squeeze(0)


class GRUCell(_Cell):
    """Gated recurrent unit with PyTorch's gate order (r, z, n)."""

    mode = "gru"

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        x, (h,), batched = self._batched(input, (hx,))
        h = gru_step(self._project(x), h, self.weight_hh.t(), self.bias_hh)
        return h if batched else h.squeeze(0)


class LSTMCell(_Cell):
    """Long short-term memory cell with PyTorch's gate order (i, f, g, o)."""

    mode = "lstm"

    def forward(
        self, input: Tensor, hx: tuple[Tensor, Tensor] | None = None
    ) -> tuple[Tensor, Tensor]:
        if hx is not None and not (isinstance(hx, (tuple, list)) and len(hx) == 2):
            raise TypeError("LSTMCell: hx must be a tuple (h_0, c_0) of two tensors, got "
                            f"{type(hx).__name__}")
        x, (h, c), batched = self._batched(input, (None, None) if hx is None else tuple(hx))
        h, c = lstm_step(self._project(x), h, c, self.weight_hh.t(), self.bias_hh)
        return (h, c) if batched else (h.squeeze(0), c.squeeze(0))
