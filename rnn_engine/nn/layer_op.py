"""One recurrent layer as a torch custom op, `rnn_engine::layer`, with a hand-written backward.

The op takes the input projection for every step (`gi`, one GEMM done before it), W_hh, GRU's
b_hn, the initial state and the lengths, and returns the states, the cells (LSTM) and what the
backward reads; `rnn_engine::layer_backward` is its backward, itself an op, registered through
`torch.library.register_autograd`. Which kernels run is the `kernels` argument:

- "triton": the Triton gate kernels (triton_layer.py), on CUDA natively, on CPU tensors under
  Triton's interpreter (TRITON_INTERPRET=1 set before Triton's first import: gpu_path.py);
- "fused": the fused C++ CPU kernels (fused.py), the same kernels the CPU training path runs.

Being an op, the layer is one node to autograd and to torch.compile, and `torch.library.opcheck`
checks its schema, fake (meta) implementation and autograd registration.
"""

from __future__ import annotations

import torch
from torch import Tensor

from . import fused
from .cells import GATES

KERNELS = ("triton", "fused")


def _low(bf16: bool) -> torch.dtype | None:
    return torch.bfloat16 if bf16 else None


def _check_kernels(kernels: str) -> None:
    if kernels not in KERNELS:
        raise ValueError(f"kernels must be one of {', '.join(KERNELS)}, not {kernels!r}")


@torch.library.custom_op("rnn_engine::layer", mutates_args=())
def layer(mode: str, gi: Tensor, w_hh: Tensor, b_hn: Tensor | None, h0: Tensor, c0: Tensor | None,
          lengths: Tensor | None, relu: bool, bf16: bool, kernels: str) -> tuple[Tensor, Tensor, Tensor]:
    """(states (T+1, B, H), cells (T+1, B, H) or empty, saved) of one layer over gi (T, B, G*H)."""
    _check_kernels(kernels)
    if kernels == "triton":
        from . import triton_layer

        return triton_layer.forward(mode, gi, w_hh, b_hn, h0, c0, lengths, relu, _low(bf16))
    return _fused_forward(mode, gi, w_hh, b_hn, h0, c0, lengths, relu, _low(bf16))


@layer.register_fake
def _(mode, gi, w_hh, b_hn, h0, c0, lengths, relu, bf16, kernels):
    steps, batch = gi.shape[:2]
    hidden = w_hh.shape[1]
    states = gi.new_empty(steps + 1, batch, hidden)
    cells = gi.new_empty(steps + 1, batch, hidden) if mode == "lstm" else gi.new_empty(0)
    saved = gi.new_empty(steps, batch, 4 * hidden) if mode in ("gru", "lstm") else gi.new_empty(0)
    return states, cells, saved


@torch.library.custom_op("rnn_engine::layer_backward", mutates_args=())
def layer_backward(mode: str, dstates: Tensor, dc_last: Tensor | None, states: Tensor, cells: Tensor,
                   saved: Tensor, w_hh: Tensor, lengths: Tensor | None, relu: bool, bf16: bool, kernels: str
                   ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """(dgi, dW_hh, db_hn, dh0, dc0) from the gradient of states[1:] (and of the last cell)."""
    _check_kernels(kernels)
    if kernels == "triton":
        from . import triton_layer

        dgi, dw, db_hn, dh0, dc0 = triton_layer.backward(mode, dstates, dc_last, states, cells, saved, w_hh,
                                                         lengths, relu, _low(bf16))
    else:
        dgi, dw, db_hn, dh0, dc0 = _fused_backward(mode, dstates, dc_last, states, cells, saved, w_hh,
                                                   lengths, relu, _low(bf16))
    hidden = w_hh.shape[1]
    # an op returns tensors only: an unused gradient is an empty one
    return (dgi, dw, db_hn if db_hn is not None else dstates.new_zeros(hidden), dh0,
            dc0 if dc0 is not None else dstates.new_empty(0))


@layer_backward.register_fake
def _(mode, dstates, dc_last, states, cells, saved, w_hh, lengths, relu, bf16, kernels):
    steps, batch, hidden = dstates.shape
    width = GATES[mode] * hidden
    dc0 = dstates.new_empty(batch, hidden) if mode == "lstm" else dstates.new_empty(0)
    return (dstates.new_empty(steps, batch, width), w_hh.new_empty(w_hh.shape, dtype=dstates.dtype),
            dstates.new_empty(hidden), dstates.new_empty(batch, hidden), dc0)


def _setup_context(ctx, inputs, output) -> None:
    mode, gi, w_hh, b_hn, h0, c0, lengths, relu, bf16, kernels = inputs
    states, cells, saved = output
    ctx.save_for_backward(states, cells, saved, w_hh, lengths)
    ctx.mode, ctx.relu, ctx.bf16, ctx.kernels = mode, relu, bf16, kernels
    ctx.has_bias, ctx.has_c0 = b_hn is not None, c0 is not None


def _backward(ctx, dstates: Tensor | None, dcells: Tensor | None, _dsaved: Tensor | None):
    states, cells, saved, w_hh, lengths = ctx.saved_tensors
    if dstates is None:
        dstates = torch.zeros_like(states)
    # only the last cell leaves the layer (c_n); the others are the backward's own inputs
    dc_last = dcells[-1] if ctx.mode == "lstm" and dcells is not None else None
    dgi, dw, db_hn, dh0, dc0 = layer_backward(ctx.mode, dstates[1:], dc_last, states, cells, saved, w_hh,
                                              lengths, ctx.relu, ctx.bf16, ctx.kernels)
    dh0 = dh0 + dstates[0]
    if ctx.mode == "lstm" and dcells is not None:
        dc0 = dc0 + dcells[0]
    return (None, dgi, dw, db_hn if ctx.has_bias else None, dh0, dc0 if ctx.has_c0 else None,
            None, None, None, None)


layer.register_autograd(_backward, setup_context=_setup_context)


def run_layer(mode: str, gi: Tensor, w_hh: Tensor, b_hh: Tensor | None, h0: Tensor, c0: Tensor | None,
              lengths: Tensor | None, relu: bool, low: torch.dtype | None, kernels: str
              ) -> tuple[Tensor, Tensor, Tensor | None]:
    """(output, h_T, c_T) of one layer through the op; `gi` as fused.run_layer takes it (floats only)."""
    hidden = w_hh.shape[1]
    b_hn = b_hh[2 * hidden:] if mode == "gru" and b_hh is not None else None
    if lengths is not None:
        lengths = lengths.to(dtype=torch.long)
    states, cells, _ = layer(mode, gi.contiguous(), w_hh, b_hn, h0.contiguous(),
                             None if c0 is None else c0.contiguous(), lengths, relu, low is not None, kernels)
    return states[1:], states[-1], cells[-1] if mode == "lstm" else None


# -- the fused CPU kernels behind the same op ---------------------------------------------------------
def _fused_forward(mode, gi, w_hh, b_hn, h0, c0, lengths, relu, low):
    if not fused.load():
        raise RuntimeError(f"fused kernels unavailable: {fused.status()}")
    steps, batch = gi.shape[:2]
    w = fused.gemm_weight(w_hh, low)
    lens = None if lengths is None else lengths.to(device="cpu", dtype=torch.long)
    ops = torch.ops.rnn_workbench
    if mode == "rnn":
        states = ops.rnn_forward(gi, None, w, fused.pack(w, batch, steps), h0, lens, relu)
        return states, gi.new_empty(0), gi.new_empty(0)  # two tensors: an op's outputs may not alias
    if mode == "gru":
        b_hn = b_hn if b_hn is not None else gi.new_zeros(w_hh.shape[1])
        states, saved = ops.gru_forward(gi, None, w, fused.pack(w, batch, steps), b_hn.contiguous(), h0, lens)
        return states, gi.new_empty(0), _defined(saved, lens)
    states, cells, gates = ops.lstm_forward(gi, None, w, fused.pack(w, batch, steps), h0, c0, lens)
    return states, cells, _defined(gates, lens)


def _defined(saved: Tensor, lengths: Tensor | None) -> Tensor:
    """`saved` with zeros where the kernels skip it (steps past a sequence's end, left unwritten).

    The backward never reads those entries; an op's output must still not be uninitialised memory,
    which would differ between two calls (and does under torch.compile's tracing).
    """
    if lengths is None:
        return saved
    past = torch.arange(saved.shape[0])[:, None] >= lengths[None, :]
    return saved.masked_fill_(past[:, :, None], 0.0)


def _fused_backward(mode, dout, dc_last, states, cells, saved, w_hh, lengths, relu, low):
    w = fused.gemm_weight(w_hh, low)
    steps, batch = dout.shape[:2]
    wt = fused.pack(w.t(), batch, steps)
    lens = None if lengths is None else lengths.to(device="cpu", dtype=torch.long)
    ops = torch.ops.rnn_workbench
    dout = dout.contiguous()
    if mode == "rnn":
        dgi, dw, dh0 = ops.rnn_backward(dout, states, w, wt, lens, relu, None, steps)
        return dgi, dw, None, dh0, None
    if mode == "gru":
        dgi, dw, db_hn, dh0 = ops.gru_backward(dout, saved, states, w, wt, lens, None, steps)
        return dgi, dw, db_hn, dh0, None
    dc = dc_last if dc_last is not None else dout.new_zeros(batch, w_hh.shape[1])
    dgi, dw, dh0, dc0 = ops.lstm_backward(dout, dc.contiguous(), saved, cells, states, w, wt, lens, None,
                                          steps)
    return dgi, dw, None, dh0, dc0
