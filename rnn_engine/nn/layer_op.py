"""One recurrent layer as a torch custom op, `rnn_engine::layer`, with a hand-written backward.

The op takes the input projection for every step (`gi`, one GEMM done before it), W_hh, GRU's
b_hn, the initial state and the lengths, and returns the states, the cells (LSTM) and what the
backward reads; `rnn_engine::layer_backward` is its backward, itself an op, registered through
`torch.library.register_autograd`. It runs the Triton gate kernels (triton_layer.py), on CUDA
natively, on CPU tensors under Triton's interpreter (TRITON_INTERPRET=1 set before Triton's first
import: gpu_path.py).

Being an op, the layer is one node to autograd and to torch.compile, and `torch.library.opcheck`
checks its schema, fake (meta) implementation and autograd registration. The CPU's fused C++
kernels are not behind it: the CPU path reads token ids straight from the input table (fused.py),
which an op over `gi` cannot, so it keeps its own autograd functions, checked against the per-step
path and torch.nn instead.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .cells import GATES


def _low(bf16: bool) -> torch.dtype | None:
    return torch.bfloat16 if bf16 else None


@torch.library.custom_op("rnn_engine::layer", mutates_args=())
def layer(mode: str, gi: Tensor, w_hh: Tensor, b_hn: Tensor | None, h0: Tensor, c0: Tensor | None,
          lengths: Tensor | None, relu: bool, bf16: bool) -> tuple[Tensor, Tensor, Tensor]:
    """(states (T+1, B, H), cells (T+1, B, H) or empty, saved) of one layer over gi (T, B, G*H)."""
    from . import triton_layer

    return triton_layer.forward(mode, gi, w_hh, b_hn, h0, c0, lengths, relu, _low(bf16))


@layer.register_fake
def _(mode, gi, w_hh, b_hn, h0, c0, lengths, relu, bf16):
    steps, batch = gi.shape[:2]
    hidden = w_hh.shape[1]
    states = gi.new_empty(steps + 1, batch, hidden)
    cells = gi.new_empty(steps + 1, batch, hidden) if mode == "lstm" else gi.new_empty(0)
    saved = gi.new_empty(steps, batch, 4 * hidden) if mode in ("gru", "lstm") else gi.new_empty(0)
    return states, cells, saved


@torch.library.custom_op("rnn_engine::layer_backward", mutates_args=())
def layer_backward(mode: str, dstates: Tensor, dc_last: Tensor | None, states: Tensor, cells: Tensor,
                   saved: Tensor, w_hh: Tensor, lengths: Tensor | None, relu: bool, bf16: bool
                   ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """(dgi, dW_hh, db_hn, dh0, dc0) from the gradient of states[1:] (and of the last cell)."""
    from . import triton_layer

    dgi, dw, db_hn, dh0, dc0 = triton_layer.backward(mode, dstates, dc_last, states, cells, saved, w_hh,
                                                     lengths, relu, _low(bf16))
    hidden = w_hh.shape[1]
    # an op returns tensors only: an unused gradient is an empty one
    return (dgi, dw, db_hn if db_hn is not None else dstates.new_zeros(hidden), dh0,
            dc0 if dc0 is not None else dstates.new_empty(0))


@layer_backward.register_fake
def _(mode, dstates, dc_last, states, cells, saved, w_hh, lengths, relu, bf16):
    steps, batch, hidden = dstates.shape
    width = GATES[mode] * hidden
    dc0 = dstates.new_empty(batch, hidden) if mode == "lstm" else dstates.new_empty(0)
    return (dstates.new_empty(steps, batch, width), w_hh.new_empty(w_hh.shape, dtype=dstates.dtype),
            dstates.new_empty(hidden), dstates.new_empty(batch, hidden), dc0)


def _setup_context(ctx, inputs, output) -> None:
    mode, gi, w_hh, b_hn, h0, c0, lengths, relu, bf16 = inputs
    states, cells, saved = output
    ctx.save_for_backward(states, cells, saved, w_hh, lengths)
    ctx.mode, ctx.relu, ctx.bf16 = mode, relu, bf16
    ctx.has_bias, ctx.has_c0 = b_hn is not None, c0 is not None


def _backward(ctx, dstates: Tensor | None, dcells: Tensor | None, _dsaved: Tensor | None):
    states, cells, saved, w_hh, lengths = ctx.saved_tensors
    if dstates is None:
        dstates = torch.zeros_like(states)
    # only the last cell leaves the layer (c_n); the others are the backward's own inputs
    dc_last = dcells[-1] if ctx.mode == "lstm" and dcells is not None else None
    dgi, dw, db_hn, dh0, dc0 = layer_backward(ctx.mode, dstates[1:], dc_last, states, cells, saved, w_hh,
                                              lengths, ctx.relu, ctx.bf16)
    dh0 = dh0 + dstates[0]
    if ctx.mode == "lstm" and dcells is not None:
        dc0 = dc0 + dcells[0]
    return (None, dgi, dw, db_hn if ctx.has_bias else None, dh0, dc0 if ctx.has_c0 else None,
            None, None, None)


layer.register_autograd(_backward, setup_context=_setup_context)


def run_layer(mode: str, gi: Tensor, w_hh: Tensor, b_hh: Tensor | None, h0: Tensor, c0: Tensor | None,
              lengths: Tensor | None, relu: bool, low: torch.dtype | None
              ) -> tuple[Tensor, Tensor, Tensor | None]:
    """(output, h_T, c_T) of one layer through the op; `gi` as fused.run_layer takes it (floats only)."""
    hidden = w_hh.shape[1]
    b_hn = b_hh[2 * hidden:] if mode == "gru" and b_hh is not None else None
    if lengths is not None:
        lengths = lengths.to(dtype=torch.long)
    states, cells, _ = layer(mode, gi.contiguous(), w_hh, b_hn, h0.contiguous(),
                             None if c0 is None else c0.contiguous(), lengths, relu, low is not None)
    return states[1:], states[-1], cells[-1] if mode == "lstm" else None
