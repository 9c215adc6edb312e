"""Triton kernels for one time step's gate arithmetic, forward and backward, of RNN, GRU and LSTM.

Each kernel is elementwise over (batch row, block of hidden units): the GEMMs around it
(h W_hhᵀ forward, dg W_hh backward) are torch's. A kernel reads the step's input projection `gi`,
the recurrent product `gh` and the previous state (the step number `t` is not specialised on, so
one compile serves every step), and writes the new state and what the backward
needs; the backward kernel writes the gates' gradients and the part of dh_{t-1} that does not go
through W_hh. A step at or past a sequence's length (`lengths`, one per batch row) carries the state
unchanged and passes its gradient straight through, as the per-step path's `torch.where` does.

Importing this module imports Triton: on a machine without a GPU, set TRITON_INTERPRET=1 before
the first import and the kernels run on CPU tensors under Triton's interpreter (gpu_path.py).
"""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def _tanh(x):
    # tl has no tanh that also runs under the interpreter; 2σ(2x) - 1 is within ~1e-7 of it in fp32
    return 2.0 * tl.sigmoid(2.0 * x) - 1.0


@triton.jit
def _tile(H, BLOCK: tl.constexpr):
    """This program's batch row, its block of hidden units, and which of them exist."""
    cols = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    return tl.program_id(0), cols, cols < H


@triton.jit
def _ld(pointer, m):
    return tl.load(pointer, mask=m, other=0.0)


@triton.jit
def _pre(gi, gh, offset, m):
    """A gate's pre-activation: the input projection plus the recurrent product."""
    return _ld(gi + offset, m) + _ld(gh + offset, m)


@triton.jit(do_not_specialize=["t"])
def rnn_forward_step(gi, gh, h_prev, h_out, lengths, t, H, RELU: tl.constexpr,
                     BLOCK: tl.constexpr):
    b, cols, m = _tile(H, BLOCK)
    row = b * H + cols
    a = _pre(gi, gh, row, m)
    if RELU:
        h = tl.maximum(a, 0.0)
    else:
        h = _tanh(a)
    h = tl.where(t < tl.load(lengths + b), h, _ld(h_prev + row, m))
    tl.store(h_out + row, h, mask=m)


@triton.jit(do_not_specialize=["t"])
def rnn_backward_step(dout, dh_carry, h, dgi, direct, lengths, t, H, RELU: tl.constexpr,
                      BLOCK: tl.constexpr):
    b, cols, m = _tile(H, BLOCK)
    row = b * H + cols
    d = _ld(dout + row, m) + _ld(dh_carry + row, m)
    hv = _ld(h + row, m)
    if RELU:
        da = tl.where(hv > 0.0, d, 0.0)
    else:
        da = d * (1.0 - hv * hv)
    on = t < tl.load(lengths + b)
    tl.store(dgi + row, tl.where(on, da, 0.0), mask=m)
    tl.store(direct + row, tl.where(on, 0.0, d), mask=m)


@triton.jit(do_not_specialize=["t"])
def gru_forward_step(gi, gh, b_hn, h_prev, h_out, saved, lengths, t, H,
                     BLOCK: tl.constexpr):
    # gi holds W_ih x + b_ih with b_hr and b_hz folded in; b_hn stays inside r * (W_hn h + b_hn)
    b, cols, m = _tile(H, BLOCK)
    g = b * 3 * H + cols
    r = tl.sigmoid(_pre(gi, gh, g, m))
    z = tl.sigmoid(_pre(gi, gh, g + H, m))
    hn = _ld(gh + g + 2 * H, m) + _ld(b_hn + cols, m)
    n = _tanh(_ld(gi + g + 2 * H, m) + r * hn)
    hp = _ld(h_prev + b * H + cols, m)
    h = n + z * (hp - n)
    h = tl.where(t < tl.load(lengths + b), h, hp)
    tl.store(h_out + b * H + cols, h, mask=m)
    s = b * 4 * H + cols
    tl.store(saved + s, r, mask=m)
    tl.store(saved + s + H, z, mask=m)
    tl.store(saved + s + 2 * H, n, mask=m)
    tl.store(saved + s + 3 * H, hn, mask=m)


@triton.jit(do_not_specialize=["t"])
def gru_backward_step(dout, dh_carry, saved, h_prev, dgi, dgh, direct, lengths, t, H,
                      BLOCK: tl.constexpr):
    b, cols, m = _tile(H, BLOCK)
    row = b * H + cols
    d = _ld(dout + row, m) + _ld(dh_carry + row, m)
    s = b * 4 * H + cols
    r = _ld(saved + s, m)
    z = _ld(saved + s + H, m)
    n = _ld(saved + s + 2 * H, m)
    hn = _ld(saved + s + 3 * H, m)
    hp = _ld(h_prev + row, m)
    # h = (1 - z) n + z h_prev;  n = tanh(gi_n + r hn);  r, z = σ(gi + gh)
    dan = d * (1.0 - z) * (1.0 - n * n)
    daz = d * (hp - n) * z * (1.0 - z)
    dar = dan * hn * r * (1.0 - r)
    on = t < tl.load(lengths + b)
    dar = tl.where(on, dar, 0.0)
    daz = tl.where(on, daz, 0.0)
    dan = tl.where(on, dan, 0.0)
    g = b * 3 * H + cols
    tl.store(dgi + g, dar, mask=m)
    tl.store(dgi + g + H, daz, mask=m)
    tl.store(dgi + g + 2 * H, dan, mask=m)
    tl.store(dgh + g, dar, mask=m)
    tl.store(dgh + g + H, daz, mask=m)
    tl.store(dgh + g + 2 * H, dan * r, mask=m)
    tl.store(direct + row, tl.where(on, d * z, d), mask=m)


@triton.jit(do_not_specialize=["t"])
def lstm_forward_step(gi, gh, h_prev, c_prev, h_out, c_out, gates, lengths, t, H,
                      BLOCK: tl.constexpr):
    # torch's gate order: input, forget, cell (g), output
    b, cols, m = _tile(H, BLOCK)
    g4 = b * 4 * H + cols
    i = tl.sigmoid(_pre(gi, gh, g4, m))
    f = tl.sigmoid(_pre(gi, gh, g4 + H, m))
    g = _tanh(_pre(gi, gh, g4 + 2 * H, m))
    o = tl.sigmoid(_pre(gi, gh, g4 + 3 * H, m))
    row = b * H + cols
    cp = _ld(c_prev + row, m)
    c = f * cp + i * g
    h = o * _tanh(c)
    on = t < tl.load(lengths + b)
    tl.store(c_out + row, tl.where(on, c, cp), mask=m)
    tl.store(h_out + row, tl.where(on, h, _ld(h_prev + row, m)), mask=m)
    tl.store(gates + g4, i, mask=m)
    tl.store(gates + g4 + H, f, mask=m)
    tl.store(gates + g4 + 2 * H, g, mask=m)
    tl.store(gates + g4 + 3 * H, o, mask=m)


@triton.jit(do_not_specialize=["t"])
def lstm_backward_step(dout, dh_carry, dc, gates, c, c_prev, dgi, direct, lengths, t, H,
                       BLOCK: tl.constexpr):
    # dc is read as dc_t and overwritten with dc_{t-1}: each element by the one program that owns it
    b, cols, m = _tile(H, BLOCK)
    row = b * H + cols
    dh = _ld(dout + row, m) + _ld(dh_carry + row, m)
    dcv = _ld(dc + row, m)
    g4 = b * 4 * H + cols
    i = _ld(gates + g4, m)
    f = _ld(gates + g4 + H, m)
    g = _ld(gates + g4 + 2 * H, m)
    o = _ld(gates + g4 + 3 * H, m)
    tc = _tanh(_ld(c + row, m))
    cp = _ld(c_prev + row, m)
    dct = dcv + dh * o * (1.0 - tc * tc)
    on = t < tl.load(lengths + b)
    tl.store(dgi + g4, tl.where(on, dct * g * i * (1.0 - i), 0.0), mask=m)
    tl.store(dgi + g4 + H, tl.where(on, dct * cp * f * (1.0 - f), 0.0), mask=m)
    tl.store(dgi + g4 + 2 * H, tl.where(on, dct * i * (1.0 - g * g), 0.0), mask=m)
    tl.store(dgi + g4 + 3 * H, tl.where(on, dh * tc * o * (1.0 - o), 0.0), mask=m)
    tl.store(dc + row, tl.where(on, dct * f, dcv), mask=m)
    tl.store(direct + row, tl.where(on, 0.0, dh), mask=m)
