"""One recurrent layer over a sequence on the Triton kernels: per step one GEMM and one gate kernel.

Forward: `gi` (W_ih x + b_ih for every step, one GEMM done by the caller) comes in; per step
`gh = h_{t-1} W_hhᵀ` is one torch GEMM and the gate kernel (triton_gates.py) makes h_t (and c_t).
Backward, per step in reverse: the gate kernel turns dh_t (and dc_t) into the gates' gradients
and the direct part of dh_{t-1}, and one GEMM adds `dg W_hh` to it. Then dW_hh is one GEMM over
all steps at once and db_hn one reduction. With `low` (bf16) the GEMMs read bf16 copies of their
operands; states, gates and every gradient stay float32, as on the fused CPU kernels.

The saved tensors have the fused CPU kernels' shapes (states (T+1, B, H); GRU `saved` and LSTM
`gates` (T, B, 4H); LSTM `cells` (T+1, B, H)); the custom op of layer_op.py wraps this module.
"""

from __future__ import annotations

import torch
import triton
from torch import Tensor

from . import triton_gates as k
from .cells import GATES
from .fused import gemm_weight


def block_width(hidden: int, device: torch.device) -> int:
    """How many hidden units one program of a Triton kernel takes (the scan's too)."""
    # under the interpreter each program is a Python call: one block per row is fastest there
    width = 1 << max(0, (hidden - 1).bit_length())
    return width if device.type == "cpu" else min(width, 512)


def lengths_or_full(lengths: Tensor | None, steps: int, batch: int, device: torch.device) -> Tensor:
    """Each sequence's length as int64 on `device`; every one the full `steps` when none are given."""
    if lengths is None:
        return torch.full((batch,), steps, dtype=torch.int64, device=device)
    return lengths.to(device=device, dtype=torch.int64).contiguous()


def _mm(a: Tensor, b: Tensor, low: torch.dtype | None) -> Tensor:
    return torch.mm(a, b) if low is None else torch.mm(a.to(low), b).float()


def forward(mode: str, gi: Tensor, w_hh: Tensor, b_hn: Tensor | None, h0: Tensor, c0: Tensor | None,
            lengths: Tensor | None, relu: bool, low: torch.dtype | None
            ) -> tuple[Tensor, Tensor, Tensor]:
    """(states, cells, saved) of one layer; `cells` and (for RNN) `saved` are empty when unused."""
    steps, batch = gi.shape[:2]
    hidden = w_hh.shape[1]
    gi = gi.contiguous()
    w_t = gemm_weight(w_hh, low).t()
    lens = lengths_or_full(lengths, steps, batch, gi.device)
    block = block_width(hidden, gi.device)
    grid = (batch, triton.cdiv(hidden, block))
    states = gi.new_empty(steps + 1, batch, hidden)
    states[0] = h0
    cells, saved = gi.new_empty(0), gi.new_empty(0)  # two tensors: an op's outputs may not alias
    if mode == "gru":
        saved = gi.new_empty(steps, batch, 4 * hidden)
        b_hn = (b_hn if b_hn is not None else gi.new_zeros(hidden)).contiguous()
    elif mode == "lstm":
        cells = gi.new_empty(steps + 1, batch, hidden)
        cells[0] = c0
        saved = gi.new_empty(steps, batch, 4 * hidden)
    for t in range(steps):
        gh = _mm(states[t], w_t, low)
        if mode == "rnn":
            k.rnn_forward_step[grid](gi[t], gh, states[t], states[t + 1], lens, t, hidden, RELU=relu,
                                     BLOCK=block)
        elif mode == "gru":
            k.gru_forward_step[grid](gi[t], gh, b_hn, states[t], states[t + 1], saved[t], lens, t, hidden,
                                     BLOCK=block)
        else:
            k.lstm_forward_step[grid](gi[t], gh, states[t], cells[t], states[t + 1], cells[t + 1], saved[t],
                                      lens, t, hidden, BLOCK=block)
    return states, cells, saved


def backward(mode: str, dout: Tensor, dc_last: Tensor | None, states: Tensor, cells: Tensor, saved: Tensor,
             w_hh: Tensor, lengths: Tensor | None, relu: bool, low: torch.dtype | None
             ) -> tuple[Tensor, Tensor, Tensor | None, Tensor, Tensor | None]:
    """(dgi, dW_hh, db_hn, dh0, dc0) from dout, the gradient of states[1:]."""
    steps, batch, hidden = dout.shape
    dout = dout.contiguous()
    w = gemm_weight(w_hh, low)
    lens = lengths_or_full(lengths, steps, batch, dout.device)
    block = block_width(hidden, dout.device)
    grid = (batch, triton.cdiv(hidden, block))
    width = GATES[mode] * hidden
    dgi = dout.new_empty(steps, batch, width)
    dgh = dout.new_empty(steps, batch, width) if mode == "gru" else dgi
    dh = dout.new_zeros(batch, hidden)
    direct = dout.new_empty(batch, hidden)
    dc = None
    if mode == "lstm":
        dc = (dc_last if dc_last is not None else dout.new_zeros(batch, hidden)).clone().contiguous()
    for t in range(steps - 1, -1, -1):
        if mode == "rnn":
            k.rnn_backward_step[grid](dout[t], dh, states[t + 1], dgi[t], direct, lens, t, hidden, RELU=relu,
                                      BLOCK=block)
        elif mode == "gru":
            k.gru_backward_step[grid](dout[t], dh, saved[t], states[t], dgi[t], dgh[t], direct, lens, t,
                                      hidden, BLOCK=block)
        else:
            k.lstm_backward_step[grid](dout[t], dh, dc, saved[t], cells[t + 1], cells[t], dgi[t], direct,
                                       lens, t, hidden, BLOCK=block)
        dh = torch.addmm(direct, dgh[t], w) if low is None else direct + _mm(dgh[t], w, low)
    # dW_hh = Σ_t dg_tᵀ h_{t-1}: one GEMM over all T·B rows
    flat = dgh.reshape(steps * batch, width)
    prev = states[:-1].reshape(steps * batch, hidden)
    dw = _mm(flat.t(), prev if low is None else prev.to(low), low)
    db_hn = dgh[:, :, 2 * hidden:].sum((0, 1)) if mode == "gru" else None
    return dgi, dw, db_hn, dh, dc

