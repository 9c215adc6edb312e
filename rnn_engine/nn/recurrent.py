"""`Recurrent`: a stack of hand-written cells over a sequence, a drop-in for torch.nn.RNN/GRU/LSTM."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from . import fused, layer_op
from .cells import GATES
from .checks import check_hx_rank, check_input_dtype, check_layer_arguments, check_state_shape
from .minimal import MIN_GATES, MinRecurrent
from .paths import FUSED, TRITON, layer_path
from .precision import gemm
from .steps import per_step_layer

State = Tensor | tuple[Tensor, Tensor]


class Recurrent(nn.Module):
    """Multi-layer RNN/GRU/LSTM that takes what torch.nn.RNN/GRU/LSTM take and has their state_dict.

    `forward(input, hx=None, lengths=None)` returns `(output, h_n)`, or `(output, (h_n, c_n))` for
    LSTM, with torch's shapes; `input` may be batched, unbatched or a PackedSequence (giving a
    PackedSequence out), and `bidirectional` and LSTM's `proj_size` work as in torch. Two
    additions: `input` may be a tensor of integer token ids, in which case layer 0 reads column `id`
    of `weight_ih_l0` (the same as a one-hot input of width `input_size`, without building it), and
    `lengths` gives each sequence's true length so `h_n` holds the state at its last real step and
    padded outputs are zero.
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        # Recurrent("mingru" | "minlstm", ...) is a MinRecurrent (minimal.py): the same call contract,
        # none of the hidden-to-hidden machinery below
        mode = args[0] if args else kwargs.get("mode")
        if cls is Recurrent and isinstance(mode, str) and mode.lower() in MIN_GATES:
            return MinRecurrent(*args, **kwargs)
        return super().__new__(cls)

    def __init__(
        self,
        mode: str,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        mode = mode.lower() if isinstance(mode, str) else mode
        check_layer_arguments(mode, input_size, hidden_size, num_layers, nonlinearity, bias, batch_first,
                              dropout, proj_size)
        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.nonlinearity = nonlinearity
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.proj_size = proj_size
        self.directions = 2 if bidirectional else 1
        # when a list, the top layer's h_t of every step is appended (diagnostics reads their grads)
        self.recorded_states: list[Tensor] | None = None
        # run layers on the fused C++ kernels where they apply (float32 on the CPU, no recording),
        # and on CUDA on the Triton kernels once their self-check passed; False: per step (paths.py)
        self.use_fused = True
        self.kernels = None
        # bf16 mixed precision (precision.py): the dtype GEMM inputs take, or None for plain fp32
        self.gemm_dtype: torch.dtype | None = None
        g = GATES[mode] * hidden_size
        out = proj_size or hidden_size  # the size of h, which the next step and layer read
        factory = {"device": device, "dtype": dtype}
        # torch's order: per layer and direction, w_ih, w_hh, b_ih, b_hh, w_hr
        for layer in range(num_layers):
            width = input_size if layer == 0 else out * self.directions
            for suffix in self._suffixes():
                name = f"l{layer}{suffix}"
                self.register_parameter(f"weight_ih_{name}", nn.Parameter(torch.empty(g, width, **factory)))
                self.register_parameter(f"weight_hh_{name}", nn.Parameter(torch.empty(g, out, **factory)))
                if bias:
                    self.register_parameter(f"bias_ih_{name}", nn.Parameter(torch.empty(g, **factory)))
                    self.register_parameter(f"bias_hh_{name}", nn.Parameter(torch.empty(g, **factory)))
                if proj_size:
                    self.register_parameter(f"weight_hr_{name}",
                                            nn.Parameter(torch.empty(proj_size, hidden_size, **factory)))
        self.reset_parameters()

    def _suffixes(self) -> tuple[str, ...]:
        return ("", "_reverse") if self.bidirectional else ("",)

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def layer_parameters(self, layer: int, direction: int = 0
                         ) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
        """(weight_ih, weight_hh, bias_ih, bias_hh) of one layer and direction (1: reverse)."""
        suffix = "_reverse" if direction else ""
        get = lambda name: getattr(self, f"{name}_l{layer}{suffix}", None)  # noqa: E731
        return get("weight_ih"), get("weight_hh"), get("bias_ih"), get("bias_hh")

    def extra_repr(self) -> str:
        s = f"{self.mode}, {self.input_size}, {self.hidden_size}, num_layers={self.num_layers}"
        if self.mode == "rnn":
            s += f", nonlinearity={self.nonlinearity!r}"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        if self.proj_size:
            s += f", proj_size={self.proj_size}"
        return s + (", batch_first=True" if self.batch_first else "")

    def initial_state(self, batch: int, device: torch.device | str | None = None,
                      dtype: torch.dtype | None = None) -> State:
        """Zero state shaped like torch's h_0 (and c_0 for LSTM)."""
        p = self.weight_hh_l0
        shape = (self.num_layers * self.directions, batch)
        kw = {"device": device or p.device, "dtype": dtype or p.dtype}
        h = torch.zeros(*shape, self.proj_size or self.hidden_size, **kw)
        return (h, torch.zeros(*shape, self.hidden_size, **kw)) if self.mode == "lstm" else h

    def forward(
        self, input: Tensor | PackedSequence, hx: State | None = None, lengths: Tensor | None = None
    ) -> tuple[Tensor | PackedSequence, State]:
        packed = input if isinstance(input, PackedSequence) else None
        if packed is not None:
            # padded in the batch's own order; h_n comes back in that order too, as torch's does
            input, lengths = pad_packed_sequence(packed)
        self._check(input, hx, lengths, packed is not None)
        tokens = not input.is_floating_point()
        unbatched = input.dim() == (1 if tokens else 2)
        if unbatched:
            input = input.unsqueeze(1)
            if hx is not None:
                hx = tuple(s.unsqueeze(1) for s in hx) if isinstance(hx, (tuple, list)) else hx.unsqueeze(1)
        elif self.batch_first and packed is None:
            input = input.transpose(0, 1)
        steps, batch = input.shape[0], input.shape[1]
        if hx is None:
            dtype = None if tokens else input.dtype
            hx = self.initial_state(batch, input.device, dtype)
        h0, c0 = hx if isinstance(hx, (tuple, list)) else (hx, None)
        mask = backwards = None
        if lengths is not None:
            lengths = torch.as_tensor(lengths, device=input.device)
            # mask[t, b] is True while step t is inside sequence b
            mask = (torch.arange(steps, device=input.device)[:, None] < lengths[None, :]).unsqueeze(-1)
        if self.bidirectional:
            backwards = _reversal(steps, batch, lengths, input.device)

        layer_input = input
        h_last, c_last = [], []
        for layer in range(self.num_layers):
            if layer > 0 and self.dropout and self.training:
                layer_input = F.dropout(layer_input, self.dropout, training=True)
            outputs = []
            for direction in range(self.directions):
                k = layer * self.directions + direction
                x = layer_input if direction == 0 else _reorder(layer_input, backwards)
                out, h, c = self.run_layer(layer, x, h0[k], None if c0 is None else c0[k], mask, lengths,
                                           record=layer == self.num_layers - 1 and direction == 0,
                                           direction=direction)
                outputs.append(out if direction == 0 else _reorder(out, backwards))
                h_last.append(h)
                if c is not None:
                    c_last.append(c)
            layer_input = outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=-1)

        output = layer_input
        h_n: State = torch.stack(h_last)
        if self.mode == "lstm":
            h_n = (h_n, torch.stack(c_last))
        if packed is not None:
            return _repack(output, lengths, packed), h_n
        if unbatched:
            output = output.squeeze(1)
            h_n = tuple(s.squeeze(1) for s in h_n) if isinstance(h_n, tuple) else h_n.squeeze(1)
        elif self.batch_first:
            output = output.transpose(0, 1)
        return output, h_n

    def _check(self, input: Any, hx: Any, lengths: Any, packed: bool = False) -> None:
        """Raise what torch.nn's layers raise, in their order (checks.py), with what was expected.

        A few comparisons of shapes and types per call; nothing that reads the tensors' values on
        a GPU (a token id out of range is caught where the ids are read). A packed input arrives
        here padded and time-major, whatever `batch_first` says, as torch reads packed input.
        """
        name = f"Recurrent({self.mode})"
        if not isinstance(input, Tensor):
            raise TypeError(f"{name}: input must be a Tensor or a PackedSequence, not {type(input).__name__}")
        tokens = not input.is_floating_point()
        if tokens and (input.is_complex() or input.dtype == torch.bool):
            raise TypeError(f"{name}: input must be floating point, or integer token ids, not {input.dtype}")
        rank = (1, 2) if tokens else (2, 3)
        if tokens and input.dim() not in rank:
            raise ValueError(f"{name}: expected token ids as a 1-D (unbatched) or 2-D (batched) tensor, "
                             f"got a {input.dim()}-D tensor of shape {tuple(input.shape)}")
        if input.dim() not in rank:
            said = "D tensor instead" if self.mode == "rnn" else "D instead"  # torch's words differ per class
            raise ValueError(f"{name}: Expected input to be 2D or 3D, got {input.dim()}{said} (input shape "
                             f"{tuple(input.shape)})")
        unbatched = input.dim() == rank[0]
        if hx is not None:
            check_hx_rank(name, self.mode, hx, batched=not unbatched)
        weight = self.weight_hh_l0
        if not tokens:
            check_input_dtype(name, input, weight)
            if input.shape[-1] != self.input_size:
                raise RuntimeError(f"{name}: input.size(-1) must be equal to input_size. Expected "
                                   f"{self.input_size}, got {input.shape[-1]} (input shape "
                                   f"{tuple(input.shape)})")
        if input.device != weight.device:
            raise RuntimeError(f"{name}: input is on {input.device} but the weights are on {weight.device}")
        time_dim = 1 if self.batch_first and not unbatched and not packed else 0
        steps = input.shape[time_dim]
        batch = 1 if unbatched else input.shape[1 - time_dim]
        if steps == 0:
            raise RuntimeError(f"{name}: Expected sequence length to be larger than 0 in RNN (input shape "
                               f"{tuple(input.shape)})")
        if hx is not None:
            self._check_hx(hx, batch, unbatched, input, name)
        if lengths is not None:
            self._check_lengths(lengths, batch, steps, name)

    def _check_hx(self, hx: Any, batch: int, unbatched: bool, input: Tensor, name: str) -> None:
        stack = self.num_layers * self.directions
        h_size = self.proj_size or self.hidden_size
        if self.mode == "lstm":
            parts = [("h_0 of (h_0, c_0)", hx[0], h_size), ("c_0", hx[1], self.hidden_size)]
        else:
            parts = [("h_0", hx, h_size)]
        for label, t, size in parts:
            # torch compares the state after giving an unbatched one its batch of 1, and says so
            seen = t.unsqueeze(1) if unbatched else t
            layout = "(num_layers * num_directions, " + ("" if unbatched else "batch, ") + \
                ("proj_size or hidden_size)" if label != "c_0" and self.proj_size else "hidden_size)")
            expected = (stack, size) if unbatched else (stack, batch, size)
            layout += f" = {expected} for {'unbatched' if unbatched else 'batched'} input"
            check_state_shape(name, label, seen, (stack, batch, size), layout)
            if input.is_floating_point() and t.dtype != input.dtype:
                raise RuntimeError(f"{name}: {label.split()[0]} dtype {t.dtype} does not match the input's "
                                   f"{input.dtype}")
            if t.device != input.device:
                raise RuntimeError(f"{name}: {label.split()[0]} is on {t.device} but the input is on "
                                   f"{input.device}")

    @staticmethod
    def _check_lengths(lengths: Any, batch: int, steps: int, name: str) -> None:
        lengths = torch.as_tensor(lengths)
        if lengths.is_floating_point() or lengths.dim() != 1 or lengths.shape[0] != batch:
            raise ValueError(f"{name}: lengths must be whole numbers, one per sequence ({batch}), got "
                             f"{lengths.dtype} of shape {tuple(lengths.shape)}")
        if lengths.device.type == "cpu" and batch and (int(lengths.min()) < 1 or int(lengths.max()) > steps):
            raise ValueError(f"{name}: every length must be between 1 and the {steps} time steps, got "
                             f"{int(lengths.min())} to {int(lengths.max())}")

    def _input_bias(self, layer: int, fold_gru_bias: bool, direction: int = 0) -> Tensor | None:
        """b_ih, plus b_hh where it can move to the input side.

        GRU's b_hn sits inside r * (W_hn h + b_hn) and never moves; its b_hr and b_hz do when
        `fold_gru_bias` (the fused kernels expect that; the per-step path adds b_hh itself).
        """
        _, _, b_ih, b_hh = self.layer_parameters(layer, direction)
        if b_hh is None:
            return b_ih
        if self.mode == "gru":
            if not fold_gru_bias:
                return b_ih
            h = self.hidden_size
            b_hh = torch.cat([b_hh[: 2 * h], b_hh.new_zeros(h)])
        return b_hh if b_ih is None else b_ih + b_hh

    def _input_table(self, layer: int, fold_gru_bias: bool = False, direction: int = 0) -> Tensor:
        """(input_size, G*H): row i is the input projection of a one-hot input i, bias included."""
        w_ih = self.layer_parameters(layer, direction)[0]
        bias = self._input_bias(layer, fold_gru_bias, direction)
        return w_ih.t() if bias is None else w_ih.t() + bias

    def _project(self, layer: int, x: Tensor, for_kernels: bool = False, direction: int = 0) -> Tensor:
        """W_ih x + b_ih (+ the movable part of b_hh) for every step at once, (T, B, G*H).

        For the fused kernels (`for_kernels`), GRU's b_hr and b_hz are folded in, the GEMM runs on
        fused.linear, and token input returns the (V, G*H) table itself: the kernels read its rows.
        """
        if not x.is_floating_point():
            # an id selects a row of the table: the fused embedding + input projection, with the bias
            # already in the small table rather than added to all T*B rows
            table = self._input_table(layer, for_kernels, direction)
            return table if for_kernels else F.embedding(x, table)
        w_ih = self.layer_parameters(layer, direction)[0]
        if self.gemm_dtype is not None:
            return gemm(x, w_ih, self._input_bias(layer, for_kernels, direction), self.gemm_dtype)
        linear = fused.linear if for_kernels else F.linear
        return linear(x, w_ih, self._input_bias(layer, for_kernels, direction))

    @property
    def kernels(self) -> str | None:
        """"triton": every layer on the Triton kernels, on any device (on a CPU under Triton's
        interpreter: `workbench check --kernels triton`, the tests); None: chosen as `use_fused` says."""
        return self._kernels

    @kernels.setter
    def kernels(self, value: str | None) -> None:
        if value not in (None, "triton"):
            raise ValueError(f"Recurrent.kernels must be None (automatic) or 'triton', not {value!r}")
        self._kernels = value

    def run_layer(
        self, layer: int, x: Tensor, h: Tensor, c: Tensor | None, mask: Tensor | None,
        lengths: Tensor | None, record: bool = False, direction: int = 0
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        """(output, h_T, c_T) of one layer and direction over `x`, on the path paths.py chooses."""
        _, w_hh, _, b_hh = self.layer_parameters(layer, direction)
        recorded = self.recorded_states if record else None
        relu = self.nonlinearity == "relu"
        low = self.gemm_dtype
        path = layer_path(self, x, w_hh, recorded is not None)
        if path == TRITON:
            gi = self._project(layer, x, for_kernels=True, direction=direction)
            if not x.is_floating_point():
                gi = F.embedding(x, gi)
            output, h, c = layer_op.run_layer(self.mode, gi, w_hh, b_hh, h, c, lengths, relu, low)
        elif path == FUSED:
            ids = None if x.is_floating_point() else x
            gi = self._project(layer, x, for_kernels=True, direction=direction)
            output, h, c = fused.run_layer(self.mode, gi, w_hh, b_hh, h, c, lengths, relu, ids=ids, low=low)
        else:
            w_hr = getattr(self, f"weight_hr_l{layer}{'_reverse' if direction else ''}", None)
            gi_all = self._project(layer, x, direction=direction)
            return per_step_layer(self.mode, gi_all, h, c, w_hh, b_hh if self.mode == "gru" else None, relu,
                                  mask, low, w_hr, recorded)
        return (output if mask is None else output * mask), h, c


class RNN(Recurrent):
    """`torch.nn.RNN`'s signature over `Recurrent("rnn", ...)`: its arguments in its order."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh",
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None, **unexpected: Any) -> None:
        _refuse_unexpected("RNN", unexpected)
        super().__init__("rnn", input_size, hidden_size, num_layers, nonlinearity, bias, batch_first, dropout,
                         bidirectional, device=device, dtype=dtype)


class GRU(Recurrent):
    """`torch.nn.GRU`'s signature over `Recurrent("gru", ...)`: its arguments in its order."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None,
                 **unexpected: Any) -> None:
        _refuse_unexpected("GRU", unexpected)
        super().__init__("gru", input_size, hidden_size, num_layers, "tanh", bias, batch_first, dropout,
                         bidirectional, device=device, dtype=dtype)


class LSTM(Recurrent):
    """`torch.nn.LSTM`'s signature over `Recurrent("lstm", ...)`: its arguments in its order."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 proj_size: int = 0, device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__("lstm", input_size, hidden_size, num_layers, "tanh", bias, batch_first, dropout,
                         bidirectional, proj_size, device=device, dtype=dtype)


def _refuse_unexpected(cls: str, unexpected: dict[str, Any]) -> None:
    if "proj_size" in unexpected:
        raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
    if unexpected:
        raise TypeError(f"{cls}.__init__() got an unexpected keyword argument {next(iter(unexpected))!r}")


def _reversal(steps: int, batch: int, lengths: Tensor | None, device: torch.device) -> Tensor | None:
    """Index (T, B) that reads each sequence backwards within its length; None: flip all of it."""
    if lengths is None:
        return None
    t = torch.arange(steps, device=device)[:, None]
    # inside a sequence, step t reads step len-1-t; padding stays where it is
    return torch.where(t < lengths[None, :], lengths[None, :] - 1 - t, t.expand(steps, batch))


def _reorder(x: Tensor, index: Tensor | None) -> Tensor:
    """x (T, B[, F]) with its steps taken by `index` along time, or flipped when index is None."""
    if index is None:
        return x.flip(0)
    if x.dim() == 2:
        return x.gather(0, index)
    return x.gather(0, index.unsqueeze(-1).expand_as(x))


def _repack(output: Tensor, lengths: Tensor, like: PackedSequence) -> PackedSequence:
    """The padded output (T, B, F) in batch order, packed exactly as the input `like` was."""
    order = like.sorted_indices
    padded = output if order is None else output.index_select(1, order)
    sorted_lengths = lengths.cpu() if order is None else lengths.cpu()[order.cpu()]
    data = pack_padded_sequence(padded, sorted_lengths, enforce_sorted=True).data
    return PackedSequence(data, like.batch_sizes, like.sorted_indices, like.unsorted_indices)
