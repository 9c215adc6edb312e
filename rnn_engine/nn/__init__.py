"""What the network computes: hand-written recurrent cells and layers, and the kernels that run them.

`Recurrent` is a drop-in for torch.nn.RNN/GRU/LSTM (`RNN`, `GRU` and `LSTM` are it under their
signatures, the cells likewise for RNNCell/GRUCell/LSTMCell): it takes what they take, refuses what
they refuse with their exception types and words (`checks`), has their state_dict, so weights load
both ways, and computes their outputs and gradients to float64 round-off (the tests hold it to
1e-10 on every sample torch's own module tests use). Behind the same interface sit torch.nn's own layers
(`torch_layers`, for `--impl torch` and as the reference), the fused CPU kernels (`fused`, one C++
call per layer and direction, built on first use, with the per-step PyTorch path as their
fallback) and bf16 mixed precision (`precision`). Whatever path runs, the numbers are the same to
float32 rounding; which one runs is said in every run's log.

    import torch
    from rnn_engine.nn import Recurrent
    lstm = Recurrent("lstm", input_size=10, hidden_size=20, num_layers=2, batch_first=True)
    out, (h_n, c_n) = lstm(torch.randn(3, 5, 10))   # as torch.nn.LSTM(10, 20, 2, batch_first=True)
"""

from __future__ import annotations

from .. import _lazy

_EXPORTS = {
    "Recurrent": ".recurrent",
    "RNN": ".recurrent",
    "GRU": ".recurrent",
    "LSTM": ".recurrent",
    "RNNCell": ".cells",
    "GRUCell": ".cells",
    "LSTMCell": ".cells",
    "recurrent_layer": ".torch_layers",
}
__all__ = sorted(_EXPORTS)
__getattr__ = _lazy(__name__, _EXPORTS)
