"""The drop-ins' refusals: torch.nn's exception types and words, checked in torch's order.

Code that catches torch.nn's exceptions, or tests that match their messages, keep working when
`Recurrent`, `RNN`/`GRU`/`LSTM` or the cells stand in for torch's classes. Where torch's message
is terse, the detail after it names what was expected and what came. Only shapes, dtypes and
Python types are read: nothing here reads a tensor's values, so no check waits on a GPU.
"""

from __future__ import annotations

import numbers
import warnings
from typing import Any

import torch
from torch import Tensor

MODES = ("rnn", "gru", "lstm")


def check_layer_arguments(mode: str, input_size: Any, hidden_size: Any, num_layers: Any, nonlinearity: Any,
                          bias: Any, batch_first: Any, dropout: Any, proj_size: Any) -> None:
    """Raise as torch.nn.RNNBase.__init__ does for the same arguments (and name what it leaves unsaid)."""
    if mode not in MODES:
        raise ValueError(f"Unrecognized RNN mode: {mode!r} (expected one of {', '.join(MODES)})")
    if mode == "rnn" and nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'.")
    if not isinstance(proj_size, int) or isinstance(proj_size, bool):
        raise TypeError(f"proj_size should be of type int, got: {type(proj_size).__name__}")
    if proj_size and mode != "lstm":
        raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
    if not isinstance(dropout, numbers.Number) or isinstance(dropout, bool) or not 0 <= dropout <= 1:
        raise ValueError("dropout should be a number in range [0, 1] representing the probability of an "
                         f"element being zeroed, got {dropout!r}")
    for name, value in (("bias", bias), ("batch_first", batch_first)):
        if not isinstance(value, bool):
            raise TypeError(f"{name} should be of type bool, got: {type(value).__name__}")
    for name, value in (("input_size", input_size), ("hidden_size", hidden_size), ("num_layers", num_layers)):
        # torch checks the type of the first two only; a float num_layers would fail later in range()
        if not isinstance(value, int):
            raise TypeError(f"{name} should be of type int, got: {type(value).__name__}")
        if value <= 0:
            raise ValueError(f"{name} must be greater than zero, got {value}")
    if proj_size < 0:
        raise ValueError("proj_size should be a positive integer or zero to disable projections")
    if proj_size >= hidden_size:
        raise ValueError(f"proj_size has to be smaller than hidden_size ({proj_size} >= {hidden_size})")
    if dropout > 0 and num_layers == 1:
        warnings.warn("dropout option adds dropout after all but last recurrent layer, so non-zero dropout "
                      f"expects num_layers greater than 1, but got dropout={dropout} and "
                      f"num_layers={num_layers}", stacklevel=3)


def check_cell_arguments(input_size: Any, hidden_size: Any) -> None:
    """Sizes a cell can be built with (torch's cells fail later, inside torch.empty).

    A cell's bias is taken for its truth, as torch's cells take it: torch's own error samples
    build `RNNCell(10, 20, 'relu')`, whose third argument is the bias.
    """
    for name, value in (("input_size", input_size), ("hidden_size", hidden_size)):
        if not isinstance(value, int):
            raise TypeError(f"{name} should be of type int, got: {type(value).__name__}")
        if value <= 0:
            raise ValueError(f"{name} must be greater than zero, got {value}")


def check_hx_rank(name: str, mode: str, hx: Any, batched: bool) -> None:
    """hx has the rank the input's asks for: 3-D with a batched input, 2-D with an unbatched one."""
    want = 3 if batched else 2
    kind = "batched 3-D" if batched else "unbatched 2-D"
    if mode == "lstm":
        if not (isinstance(hx, (tuple, list)) and len(hx) == 2 and all(isinstance(t, Tensor) for t in hx)):
            raise TypeError(f"{name}: hx must be a tuple (h_0, c_0) of two tensors, got {type(hx).__name__}")
        if hx[0].dim() != want or hx[1].dim() != want:
            raise RuntimeError(f"{name}: For {kind} input, hx and cx should also be {want}-D but got "
                               f"({hx[0].dim()}-D, {hx[1].dim()}-D) tensors")
        return
    if not isinstance(hx, Tensor):
        raise TypeError(f"{name}: hx must be one tensor h_0, got {type(hx).__name__}")
    if hx.dim() != want:
        raise RuntimeError(f"{name}: For {kind} input, hx should also be {want}-D but got {hx.dim()}-D "
                           "tensor")


def check_input_dtype(name: str, input: Tensor, weight: Tensor) -> None:
    """torch's check: under autocast the GEMMs cast, so a mixed input is fine there."""
    if input.dtype != weight.dtype and not torch.is_autocast_enabled(input.device.type):
        raise ValueError(f"{name}: RNN input dtype ({input.dtype}) does not match weight dtype "
                         f"({weight.dtype}). Convert input: input.to({weight.dtype}), or convert model: "
                         f"model.to({input.dtype})")


def check_state_shape(name: str, label: str, t: Tensor, expected: tuple[int, ...], layout: str) -> None:
    """One state tensor against the shape torch expects (its words, then the layout spelled out)."""
    if tuple(t.shape) != expected:
        which = {"h_0": "hidden", "h_0 of (h_0, c_0)": "hidden[0]", "c_0": "hidden[1]"}[label]
        raise RuntimeError(f"{name}: Expected {which} size {expected}, got {list(t.shape)}: "
                           f"{label.split()[0]} must have shape {layout}")


def check_cell_call(name: str, input: Any, states: tuple[Any, ...], input_size: int, hidden_size: int,
                    weight: Tensor) -> None:
    """A cell's input (1-D or 2-D) and its state tensors, with torch's RNNCell/GRUCell/LSTMCell words."""
    if not isinstance(input, Tensor):
        raise TypeError(f"{name}: input must be a Tensor, not {type(input).__name__}")
    if input.dim() not in (1, 2):
        raise ValueError(f"{name}: Expected input to be 1D or 2D, got {input.dim()}D instead")
    for k, h in enumerate(states):
        label = "hidden" if len(states) == 1 else f"hx[{k}]"
        if not isinstance(h, Tensor):
            raise TypeError(f"{name}: {label} must be a Tensor, not {type(h).__name__}")
        if h.dim() not in (1, 2):
            raise ValueError(f"{name}: Expected {label} to be 1D or 2D, got {h.dim()}D instead")
    if input.shape[-1] != input_size:
        raise RuntimeError(f"{name}: input has inconsistent input_size: got {input.shape[-1]} expected "
                           f"{input_size}")
    for k, h in enumerate(states):
        if h.dim() != input.dim():
            raise RuntimeError(f"{name}: hidden{k} must be {input.dim()}-D like the input "
                               f"({'batched' if input.dim() == 2 else 'unbatched'}), got {h.dim()}-D")
        if input.dim() == 2 and h.shape[0] != input.shape[0]:
            raise RuntimeError(f"{name}: Input batch size {input.shape[0]} doesn't match hidden{k} batch "
                               f"size {h.shape[0]}")
        if h.shape[-1] != hidden_size:
            raise RuntimeError(f"{name}: hidden{k} has inconsistent hidden_size: got {h.shape[-1]}, expected "
                               f"{hidden_size}")
    for k, t in enumerate((input, *states)):
        if t.dtype != weight.dtype:
            what = "input" if k == 0 else f"hidden{k - 1}"
            raise RuntimeError(f"{name}: {what} dtype {t.dtype} does not match the weights' {weight.dtype}; "
                               f"convert one of them ({what}.to({weight.dtype}) or cell.to({t.dtype}))")
        if t.device != weight.device:
            what = "input" if k == 0 else f"hidden{k - 1}"
            raise RuntimeError(f"{name}: {what} is on {t.device} but the weights are on {weight.device}")
