"""torch.nn's RNN/GRU/LSTM behind `Recurrent`'s interface: the reference, and cuDNN on CUDA (--impl torch).

The layers are torch.nn's own classes with two additions `Recurrent` has: token ids as input (a
one-hot vector each, which is what `weight_ih_l0` of a scratch layer reads by its column) and
`lengths`. Their parameters have the same names and shapes as the scratch layers', so a
checkpoint moves between the two implementations as it is.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ..config import IMPLS
from .minimal import MIN_GATES, MinRecurrent
from .recurrent import Recurrent, State


class _TokensAndLengths:
    """What a torch.nn layer needs to stand where a `Recurrent` does."""

    def forward(self, input: Tensor, hx: State | None = None, lengths: Tensor | None = None):
        if not input.is_floating_point():
            input = F.one_hot(input, self.input_size).to(self.weight_ih_l0.dtype)
        if lengths is None:
            return super().forward(input, hx)
        steps = input.shape[0]
        packed = pack_padded_sequence(input, torch.as_tensor(lengths).cpu(), enforce_sorted=False)
        out, h_n = super().forward(packed, hx)
        return pad_packed_sequence(out, total_length=steps)[0], h_n


class TorchRNN(_TokensAndLengths, nn.RNN):
    """torch.nn.RNN reading token ids and lengths."""


class TorchGRU(_TokensAndLengths, nn.GRU):
    """torch.nn.GRU reading token ids and lengths."""


class TorchLSTM(_TokensAndLengths, nn.LSTM):
    """torch.nn.LSTM reading token ids and lengths."""


TORCH_CLASSES = {"rnn": TorchRNN, "gru": TorchGRU, "lstm": TorchLSTM}
REFERENCES = {"rnn": "torch.nn.RNN", "gru": "torch.nn.GRU", "lstm": "torch.nn.LSTM",
              # torch.nn has none: the kernels are held to the per-step equations (minimal.py)
              "mingru": "minGRU's per-step PyTorch equations",
              "minlstm": "minLSTM's per-step PyTorch equations"}


def recurrent_layer(impl: str, mode: str, input_size: int, hidden_size: int, num_layers: int = 1,
                    nonlinearity: str = "tanh", dropout: float = 0.0,
                    bidirectional: bool = False) -> nn.Module:
    """The scratch `Recurrent` or its torch.nn equivalent, with the same parameters."""
    # both warn about dropout on a single layer, where it does nothing anyway
    between = dropout if num_layers > 1 else 0.0
    if impl == "scratch" and mode in MIN_GATES:
        if bidirectional:
            raise ValueError(f"{mode} layers read one way: bidirectional is not available for them")
        return MinRecurrent(mode, input_size, hidden_size, num_layers, dropout=between)
    if impl == "scratch":
        return Recurrent(mode, input_size, hidden_size, num_layers, nonlinearity, dropout=between,
                         bidirectional=bidirectional)
    if impl != "torch":
        raise ValueError(f"impl must be one of {', '.join(IMPLS)}, not {impl!r}")
    kw = {"nonlinearity": nonlinearity} if mode == "rnn" else {}
    return TORCH_CLASSES[mode](input_size, hidden_size, num_layers, dropout=between,
                               bidirectional=bidirectional, **kw)


def mode_of(rnn: nn.Module) -> str:
    """rnn, gru or lstm, for either implementation."""
    if isinstance(rnn, (Recurrent, MinRecurrent)):
        return rnn.mode
    return next(m for m, cls in TORCH_CLASSES.items() if isinstance(rnn, cls))


def as_scratch(rnn: nn.Module) -> Recurrent:
    """`rnn` itself, or a scratch `Recurrent` sharing a torch.nn layer's parameters.

    The diagnostics and the Inside view read every step's state, which torch.nn does not expose:
    they run the twin, which computes what the torch.nn layer does with the same tensors.
    """
    if not isinstance(rnn, nn.RNNBase):  # a scratch stack, or a tutorial model's own recurrence
        return rnn
    mode = mode_of(rnn)
    twin = Recurrent(mode, rnn.input_size, rnn.hidden_size, rnn.num_layers,
                     getattr(rnn, "nonlinearity", "tanh"), rnn.bias, rnn.batch_first, rnn.dropout,
                     rnn.bidirectional, rnn.proj_size, device="meta")
    for name in list(twin._parameters):
        twin._parameters[name] = rnn._parameters[name]
    twin.train(rnn.training)
    return twin


@contextmanager
def scratch_in_place(model: nn.Module) -> Iterator[Recurrent]:
    """`model` with `model.rnn` read through its scratch twin for a while (see `as_scratch`)."""
    original = model.rnn
    scratch = as_scratch(original)
    if scratch is original:  # nothing to swap (and `rnn` may be a view the model gives of its layers)
        yield original
        return
    model.rnn = scratch
    try:
        yield scratch
    finally:
        model.rnn = original
