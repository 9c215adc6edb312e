"""The minGRU / minLSTM scan on Triton: one kernel walks all steps forward, one walks them back.

Each program owns one batch row and a block of hidden units and loops over the T steps itself,
so a layer is one launch each way (the C++ kernels' plan, fused.py; equations in minimal.py): it
reads the step's projection, makes the gates and h_t = a_t h_{t-1} + b_t, and writes h_t. The
backward program recomputes the gates from the projection and carries a_{t+1} dL/dh_{t+1} down.
A step at or past a sequence's length carries h unchanged and its gradient through whole.

It has run on CPU tensors under Triton's interpreter (TRITON_INTERPRET=1, the tests) and, as the
rest of the GPU path, is measured on a GPU by `benchmarks/gpu_check.py`.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

from .triton_layer import block_width, lengths_or_full


@triton.jit
def _positive(u):
    return tl.where(u >= 0, u + 0.5, tl.sigmoid(u))


@triton.jit
def _positive_grad(u):
    s = tl.sigmoid(u)
    return tl.where(u >= 0, 1.0, s * (1.0 - s))


@triton.jit
def _scan_forward(proj, h0, out, lens, T, B, H, GATES: tl.constexpr, BLOCK: tl.constexpr):
    b = tl.program_id(0)
    cols = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    m = cols < H
    n = tl.load(lens + b)
    h = tl.load(h0 + b * H + cols, mask=m, other=0.0)
    for t in range(T):
        x = proj + (t * B + b) * GATES * H + cols
        if GATES == 2:
            z = tl.sigmoid(tl.load(x, mask=m, other=0.0))
            new = h + z * (_positive(tl.load(x + H, mask=m, other=0.0)) - h)
        else:
            f = tl.sigmoid(tl.load(x, mask=m, other=0.0))
            i = tl.sigmoid(tl.load(x + H, mask=m, other=0.0))
            new = (f * h + i * _positive(tl.load(x + 2 * H, mask=m, other=0.0))) / (f + i)
        h = tl.where(t < n, new, h)
        tl.store(out + (t * B + b) * H + cols, h, mask=m)


@triton.jit
def _scan_backward(dout, proj, out, h0, dproj, dh0, lens, T, B, H, GATES: tl.constexpr,
                   BLOCK: tl.constexpr):
    b = tl.program_id(0)
    cols = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    m = cols < H
    n = tl.load(lens + b)
    carry = tl.zeros([BLOCK], dtype=tl.float32)
    for k in range(T):
        t = T - 1 - k
        d = tl.load(dout + (t * B + b) * H + cols, mask=m, other=0.0) + carry
        prev_at = tl.where(t > 0, out + ((t - 1) * B + b) * H + cols, h0 + b * H + cols)
        prev = tl.load(prev_at, mask=m, other=0.0)
        x = proj + (t * B + b) * GATES * H + cols
        dx = dproj + (t * B + b) * GATES * H + cols
        live = t < n
        if GATES == 2:
            z = tl.sigmoid(tl.load(x, mask=m, other=0.0))
            u = tl.load(x + H, mask=m, other=0.0)
            tl.store(dx, tl.where(live, d * (_positive(u) - prev) * z * (1.0 - z), 0.0), mask=m)
            tl.store(dx + H, tl.where(live, d * z * _positive_grad(u), 0.0), mask=m)
            carry = tl.where(live, d * (1.0 - z), d)
        else:
            f = tl.sigmoid(tl.load(x, mask=m, other=0.0))
            i = tl.sigmoid(tl.load(x + H, mask=m, other=0.0))
            u = tl.load(x + 2 * H, mask=m, other=0.0)
            s = f + i
            dfp = d * prev
            dip = d * _positive(u)
            tl.store(dx, tl.where(live, (dfp - dip) * i / (s * s) * f * (1.0 - f), 0.0), mask=m)
            tl.store(dx + H, tl.where(live, (dip - dfp) * f / (s * s) * i * (1.0 - i), 0.0), mask=m)
            tl.store(dx + 2 * H, tl.where(live, d * (i / s) * _positive_grad(u), 0.0), mask=m)
            carry = tl.where(live, d * (f / s), d)
    tl.store(dh0 + b * H + cols, carry, mask=m)


def _launch(hidden: int, batch: int, device: torch.device) -> tuple[tuple[int, int], int]:
    """The grid (a program per batch row and block of units) and the block, as the gate kernels' are."""
    block = block_width(hidden, device)
    return (batch, triton.cdiv(hidden, block)), block


class _TritonScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, proj: Tensor, h0: Tensor, lengths: Tensor | None, gates: int) -> Tensor:
        steps, batch = proj.shape[:2]
        hidden = h0.shape[-1]
        proj, h0 = proj.contiguous(), h0.contiguous()
        lens = lengths_or_full(lengths, steps, batch, proj.device)
        out = proj.new_empty(steps, batch, hidden)
        grid, block = _launch(hidden, batch, proj.device)
        _scan_forward[grid](proj, h0, out, lens, steps, batch, hidden, GATES=gates, BLOCK=block)
        ctx.save_for_backward(proj, h0, out, lens)
        ctx.gates = gates
        return out

    @staticmethod
    def backward(ctx, dout: Tensor):
        proj, h0, out, lens = ctx.saved_tensors
        steps, batch = proj.shape[:2]
        hidden = h0.shape[-1]
        dproj, dh0 = torch.empty_like(proj), torch.empty_like(h0)
        grid, block = _launch(hidden, batch, proj.device)
        _scan_backward[grid](dout.contiguous(), proj, out, h0, dproj, dh0, lens, steps, batch, hidden,
                             GATES=ctx.gates, BLOCK=block)
        return dproj, dh0, None, None


def triton_scan(proj: Tensor, h0: Tensor, lengths: Tensor | None, gates: int) -> Tensor:
    """h (T, B, H) of a minGRU (gates=2) or minLSTM (3) layer from its projection (T, B, gates·H)."""
    if proj.dtype != torch.float32:
        raise TypeError(f"the Triton scan runs float32, not {proj.dtype}")
    return _TritonScan.apply(proj, h0, lengths, gates)
