"""`Recurrent`: a stack of hand-written cells over a sequence, a drop-in for torch.nn.RNN/GRU/LSTM."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import fused
from .cells import GATES, gru_step, lstm_step, rnn_step

State = Tensor | tuple[Tensor, Tensor]


class Recurrent(nn.Module):
    """Multi-layer RNN/GRU/LSTM whose state_dict keys and shapes equal torch.nn's for the same arguments.

    `forward(input, hx=None, lengths=None)` returns `(output, h_n)`, or `(output, (h_n, c_n))` for
    LSTM, with torch's shapes. Two additions: `input` may be a tensor of integer token ids, in which
    case layer 0 reads column `id` of `weight_ih_l0` (the same as a one-hot input of width
    `input_size`, without building it), and `lengths` gives each sequence's true length so `h_n`
    holds the state at its last real step and padded outputs are zero.
    """

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
    ) -> None:
        super().__init__()
        mode = mode.lower()
        if mode not in GATES:
            raise ValueError(f"mode must be one of rnn, gru, lstm, not {mode!r}")
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', not {nonlinearity!r}")
        if num_layers < 1 or hidden_size < 1 or input_size < 1:
            raise ValueError("input_size, hidden_size and num_layers must be positive")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), not {dropout}")
        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.nonlinearity = nonlinearity
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = dropout
        # when a list, the top layer's h_t of every step is appended (diagnostics reads their grads)
        self.recorded_states: list[Tensor] | None = None
        # run layers on the fused C++ kernels where they apply (float32 on the CPU, no recording)
        self.use_fused = True
        g = GATES[mode] * hidden_size
        for layer in range(num_layers):
            width = input_size if layer == 0 else hidden_size
            self.register_parameter(f"weight_ih_l{layer}", nn.Parameter(torch.empty(g, width)))
            self.register_parameter(f"weight_hh_l{layer}", nn.Parameter(torch.empty(g, hidden_size)))
            if bias:
                self.register_parameter(f"bias_ih_l{layer}", nn.Parameter(torch.empty(g)))
                self.register_parameter(f"bias_hh_l{layer}", nn.Parameter(torch.empty(g)))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def layer_parameters(self, layer: int) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
        """(weight_ih, weight_hh, bias_ih, bias_hh) of one layer."""
        get = lambda name: getattr(self, f"{name}_l{layer}", None)  # noqa: E731
        return get("weight_ih"), get("weight_hh"), get("bias_ih"), get("bias_hh")

    def extra_repr(self) -> str:
        s = f"{self.mode}, {self.input_size}, {self.hidden_size}, num_layers={self.num_layers}"
        if self.mode == "rnn":
            s += f", nonlinearity={self.nonlinearity!r}"
        if self.dropout:
            s += f", dropout={self.dropout}"
        return s + (", batch_first=True" if self.batch_first else "")

    def initial_state(self, batch: int, device: torch.device | str | None = None,
                      dtype: torch.dtype | None = None) -> State:
        """Zero state shaped like torch's h_0 (and c_0 for LSTM)."""
        p = self.weight_hh_l0
        h = torch.zeros(self.num_layers, batch, self.hidden_size,
                        device=device or p.device, dtype=dtype or p.dtype)
        return (h, h.clone()) if self.mode == "lstm" else h

    def forward(
        self, input: Tensor, hx: State | None = None, lengths: Tensor | None = None
    ) -> tuple[Tensor, State]:
        tokens = not input.is_floating_point()
        unbatched = input.dim() == (1 if tokens else 2)
        if unbatched:
            input = input.unsqueeze(1)
            if hx is not None:
                hx = tuple(s.unsqueeze(1) for s in hx) if isinstance(hx, tuple) else hx.unsqueeze(1)
        elif self.batch_first:
            input = input.transpose(0, 1)
        steps, batch = input.shape[0], input.shape[1]
        if hx is None:
            dtype = None if tokens else input.dtype
            hx = self.initial_state(batch, input.device, dtype)
        h0, c0 = hx if isinstance(hx, tuple) else (hx, None)
        mask = None
        if lengths is not None:
            lengths = torch.as_tensor(lengths, device=input.device)
            # mask[t, b] is True while step t is inside sequence b
            mask = (torch.arange(steps, device=input.device)[:, None] < lengths[None, :]).unsqueeze(-1)

        layer_input = input
        h_last, c_last = [], []
        for layer in range(self.num_layers):
            if layer > 0 and self.dropout and self.training:
                layer_input = F.dropout(layer_input, self.dropout, training=True)
            out, h, c = self._run_layer(layer, layer_input, h0[layer],
                                        None if c0 is None else c0[layer], mask, lengths,
                                        record=layer == self.num_layers - 1)
            h_last.append(h)
            if c is not None:
                c_last.append(c)
            layer_input = out

        output = layer_input
        h_n: State = torch.stack(h_last)
        if self.mode == "lstm":
            h_n = (h_n, torch.stack(c_last))
        if unbatched:
            output = output.squeeze(1)
            h_n = tuple(s.squeeze(1) for s in h_n) if isinstance(h_n, tuple) else h_n.squeeze(1)
        elif self.batch_first:
            output = output.transpose(0, 1)
        return output, h_n

    def _input_bias(self, layer: int, fold_gru_bias: bool) -> Tensor | None:
        """b_ih, plus b_hh where it can move to the input side.

        GRU's b_hn sits inside r * (W_hn h + b_hn) and never moves; its b_hr and b_hz do when
        `fold_gru_bias` (the fused kernels expect that; the per-step path adds b_hh itself).
        """
        _, _, b_ih, b_hh = self.layer_parameters(layer)
        if b_hh is None:
            return b_ih
        if self.mode == "gru":
            if not fold_gru_bias:
                return b_ih
            h = self.hidden_size
            b_hh = torch.cat([b_hh[: 2 * h], b_hh.new_zeros(h)])
        return b_hh if b_ih is None else b_ih + b_hh

    def _input_table(self, layer: int, fold_gru_bias: bool = False) -> Tensor:
        """(input_size, G*H): row i is the input projection of a one-hot input i, bias included."""
        w_ih = self.layer_parameters(layer)[0]
        bias = self._input_bias(layer, fold_gru_bias)
        return w_ih.t() if bias is None else w_ih.t() + bias

    def _project(self, layer: int, x: Tensor, for_kernels: bool = False) -> Tensor:
        """W_ih x + b_ih (+ the movable part of b_hh) for every step at once, (T, B, G*H).

        For the fused kernels (`for_kernels`), GRU's b_hr and b_hz are folded in, the GEMM runs on
        fused.linear, and token input returns the (V, G*H) table itself: the kernels read its rows.
        """
        if not x.is_floating_point():
            # an id selects a row of the table: the fused embedding + input projection, with the bias
            # already in the small table rather than added to all T*B rows
            table = self._input_table(layer, for_kernels)
            return table if for_kernels else F.embedding(x, table)
        w_ih = self.layer_parameters(layer)[0]
        linear = fused.linear if for_kernels else F.linear
        return linear(x, w_ih, self._input_bias(layer, for_kernels))

    def _run_layer(
        self, layer: int, x: Tensor, h: Tensor, c: Tensor | None, mask: Tensor | None,
        lengths: Tensor | None, record: bool
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        _, w_hh, _, b_hh = self.layer_parameters(layer)
        recorded = self.recorded_states if record else None
        relu = self.nonlinearity == "relu"
        if self.use_fused and recorded is None and fused.applies(x, w_hh):
            ids = None if x.is_floating_point() else x
            output, h, c = fused.run_layer(self.mode, self._project(layer, x, for_kernels=True), w_hh, b_hh,
                                           h, c, lengths, relu, ids=ids)
            return (output if mask is None else output * mask), h, c
        gi_all = self._project(layer, x)
        w_hh_t = w_hh.t()
        outputs = []
        # unbind(0) hands out views in one call; indexing gi_all[t] per step was measured slower
        for t, gi in enumerate(gi_all.unbind(0)):
            if self.mode == "rnn":
                h_new, c_new = rnn_step(gi, h, w_hh_t, None, relu), None
            elif self.mode == "gru":
                h_new, c_new = gru_step(gi, h, w_hh_t, b_hh), None
            else:
                h_new, c_new = lstm_step(gi, h, c, w_hh_t, None)
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
