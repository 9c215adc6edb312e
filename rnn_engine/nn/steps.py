"""One layer a step at a time: the cells' equations in a loop, on any device and dtype.

The reference every faster path is checked against (the fused CPU kernels, the Triton op and its
self-check), and the path that runs where those do not: float64, LSTM projections, recorded states.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .cells import gru_step, lstm_step, rnn_step
from .precision import gemm


def per_step_layer(mode: str, gi_all: Tensor, h: Tensor, c: Tensor | None, w_hh: Tensor, b_hh: Tensor | None,
                   relu: bool = False, mask: Tensor | None = None, low: torch.dtype | None = None,
                   w_hr: Tensor | None = None, recorded: list[Tensor] | None = None
                   ) -> tuple[Tensor, Tensor, Tensor | None]:
    """(output (T, B, H), h_T, c_T) of one layer over `gi_all` = W_ih x + b (T, B, G*H).

    `b_hh` is GRU's whole hidden bias (its b_hn sits inside r * (W_hn h + b_hn)); for RNN and LSTM
    it is already in `gi_all` and None here. `mask` (T, B, 1) holds a sequence's state past its end;
    `low` runs the hidden GEMM in bf16; `w_hr` is LSTM's projection; `recorded` collects every h_t.
    """
    w_hh_t = w_hh.t()
    w_low = None if low is None else w_hh_t.detach().to(low)  # cast once for all steps
    outputs = []
    # unbind(0) hands out views in one call; indexing gi_all[t] per step was measured slower
    for t, gi in enumerate(gi_all.unbind(0)):
        if mode == "rnn":
            h_new, c_new = rnn_step(gi, h, w_hh_t, None, relu, w_low), None
        elif mode == "gru":
            h_new, c_new = gru_step(gi, h, w_hh_t, b_hh, w_low), None
        else:
            h_new, c_new = lstm_step(gi, h, c, w_hh_t, None, w_low)
            if w_hr is not None:
                h_new = gemm(h_new, w_hr, None, low)  # LSTM with projections: h = W_hr (o * tanh(c))
        if mask is not None:
            m = mask[t]
            h_new = torch.where(m, h_new, h)
            if c_new is not None:
                c_new = torch.where(m, c_new, c)
        h, c = h_new, c_new
        if recorded is not None:
            recorded.append(h)
        outputs.append(h)
    output = torch.stack(outputs)
    if mask is not None:
        output = output * mask
    return output, h, c
