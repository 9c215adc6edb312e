"""minGRU and minLSTM: recurrent layers whose gates read only the input, trained as a scan over time.

Feng, Tung, Ahmed, Bengio and Hajimirsadeghi, "Were RNNs All We Needed?" (2024, arXiv 2410.01201),
take the hidden state out of the gates of GRU and LSTM. What remains, per unit, is

    minGRU:   z_t = σ(k_t)                      k_t, u_t = W x_t + b   (one GEMM, 2H wide)
              h_t = (1 − z_t) ⊙ h_{t−1} + z_t ⊙ g(u_t)

    minLSTM:  f_t = σ(f̂_t),  i_t = σ(î_t)        f̂_t, î_t, u_t = W x_t + b   (3H wide)
              f'_t = f_t / (f_t + i_t),  i'_t = i_t / (f_t + i_t)
              h_t = f'_t ⊙ h_{t−1} + i'_t ⊙ g(u_t)

with g(u) = u + ½ for u ≥ 0 and σ(u) below: the paper's positive-value variant of the candidate
state, which keeps h positive and bounded in the way its log-space scan needs (its
normalised minLSTM gates make h_t a weighted average of h_{t−1} and g(u_t), so the scale of h does
not grow with the sequence). Both are h_t = a_t ⊙ h_{t−1} + b_t with a_t, b_t known for every step
at once: all of a layer's weights meet the input in one GEMM over T·B rows, and what remains is a
linear scan. There is no hidden-to-hidden weight, so a GRU's T small GEMMs are gone.

The scan runs on the fused C++ kernels on the CPU (float32: one pass forward, one backward per
layer, vectorised over the units; fused.py), on a Triton kernel on CUDA (triton_scan.py, or
anywhere with `kernels = "triton"`), and elsewhere (float64, recorded states) a step at a time in
PyTorch ops with the same equations. The Heinsen log-space scan (`log_scan`) is kept for the
benchmark that compares it with the fused one.

`MinRecurrent` has `Recurrent`'s call contract: `(output, h_n)` from `(input, hx, lengths)`, time
first unless `batch_first`, token ids at layer 0, unbatched and packed input; a given state continues
a sequence, so a window read in one call equals the same window read a step at a time.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from . import fused
from .checks import check_input_dtype
from .paths import FUSED, TRITON, scan_path
from .precision import gemm

MIN_GATES = {"mingru": 2, "minlstm": 3}


def positive(u: Tensor) -> Tensor:
    """g(u) = u + ½ for u ≥ 0, σ(u) below: continuous, positive, and linear for large u."""
    return torch.where(u >= 0, u + 0.5, torch.sigmoid(u))


def coefficients(mode: str, proj: Tensor) -> tuple[Tensor, Tensor]:
    """(a, b) of h_t = a_t h_{t−1} + b_t from a layer's projection (…, G·H)."""
    if mode == "mingru":
        k, u = proj.chunk(2, dim=-1)
        return torch.sigmoid(-k), torch.sigmoid(k) * positive(u)
    f_hat, i_hat, u = proj.chunk(3, dim=-1)
    f, i = torch.sigmoid(f_hat), torch.sigmoid(i_hat)
    return f / (f + i), i / (f + i) * positive(u)


def gate_values(mode: str, proj: Tensor) -> dict[str, Tensor]:
    """The gates in [0, 1] for the Inside view: minGRU's z, minLSTM's normalised f' and i'."""
    if mode == "mingru":
        return {"z (update)": torch.sigmoid(proj.chunk(2, dim=-1)[0])}
    f_hat, i_hat, _ = proj.chunk(3, dim=-1)
    f, i = torch.sigmoid(f_hat), torch.sigmoid(i_hat)
    return {"f' (keep)": f / (f + i), "i' (write)": i / (f + i)}


def step_scan(mode: str, proj: Tensor, h0: Tensor, mask: Tensor | None = None,
              record: list[Tensor] | None = None) -> Tensor:
    """h (T, B, H) a step at a time in PyTorch ops: any dtype and device; `record` gets each b_t.

    Each recorded b_t enters h_t with weight 1, so its gradient is the total ∂L/∂h_t, the
    recurrence included (what the gradient-through-time pane shows).
    """
    a, b = coefficients(mode, proj)
    outputs, h = [], h0
    for t in range(proj.shape[0]):
        b_t = b[t]
        if record is not None:
            b_t = b_t + torch.zeros_like(b_t, requires_grad=True)
            record.append(b_t)
        new = a[t] * h + b_t
        h = new if mask is None else torch.where(mask[t], new, h)
        outputs.append(h)
    return torch.stack(outputs)


def log_scan(mode: str, proj: Tensor) -> Tensor:
    """h from a zero state by Heinsen's log-space scan (2023): cumsum and logcumsumexp over time.

    log h_t = A_t + log Σ_{s≤t} exp(log b_s − A_s) with A_t = Σ_{s≤t} log a_s. Valid because b > 0;
    kept to measure against the fused scan (`workbench bench --parallel`), not used to train.
    """
    if mode == "mingru":
        k, u = proj.chunk(2, dim=-1)
        log_a, log_z = -F.softplus(k), -F.softplus(-k)
    else:
        f_hat, i_hat, u = proj.chunk(3, dim=-1)
        log_f, log_i = -F.softplus(-f_hat), -F.softplus(-i_hat)
        log_s = torch.logaddexp(log_f, log_i)
        log_a, log_z = log_f - log_s, log_i - log_s
    log_g = torch.where(u >= 0, torch.log(F.relu(u) + 0.5), -F.softplus(-u))
    a_star = torch.cumsum(log_a, dim=0)
    return torch.exp(a_star + torch.logcumsumexp(log_z + log_g - a_star, dim=0))


class MinRecurrent(nn.Module):
    """A stack of minGRU or minLSTM layers with `Recurrent`'s call contract (see the module's notes).

    Parameters per layer k: `weight_ih_lk` (G·H × input) and `bias_ih_lk` (G·H), G = 2 for minGRU
    (k, u) and 3 for minLSTM (f̂, î, u). No hidden-to-hidden weights: that is the point.
    """

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        mode = mode.lower() if isinstance(mode, str) else mode
        if mode not in MIN_GATES:
            raise ValueError(f"MinRecurrent: mode must be one of {', '.join(MIN_GATES)}, not {mode!r}")
        for name, value in (("input_size", input_size), ("hidden_size", hidden_size),
                            ("num_layers", num_layers)):
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"MinRecurrent({mode}): {name} must be a whole number > 0, got {value!r}")
        if not isinstance(dropout, (int, float)) or not 0 <= dropout <= 1:
            raise ValueError(f"MinRecurrent({mode}): dropout must be a number in [0, 1], got {dropout!r}")
        self.mode, self.input_size, self.hidden_size = mode, input_size, hidden_size
        self.num_layers = num_layers
        self.bias, self.batch_first, self.dropout = bias, batch_first, float(dropout)
        self.bidirectional, self.proj_size, self.directions, self.nonlinearity = False, 0, 1, "tanh"
        self.recorded_states: list[Tensor] | None = None  # as Recurrent's: the top layer's, per step
        self.use_fused = True  # False: the per-step PyTorch path everywhere
        self.kernels: str | None = None  # "triton": the Triton scan on any device (the interpreter on a CPU)
        self.gemm_dtype: torch.dtype | None = None
        g = MIN_GATES[mode] * hidden_size
        factory = {"device": device, "dtype": dtype}
        for layer in range(num_layers):
            width = input_size if layer == 0 else hidden_size
            self.register_parameter(f"weight_ih_l{layer}", nn.Parameter(torch.empty(g, width, **factory)))
            if bias:
                self.register_parameter(f"bias_ih_l{layer}", nn.Parameter(torch.empty(g, **factory)))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for layer in range(self.num_layers):
            w, b = self.layer_parameters(layer)
            bound = 1.0 / math.sqrt(w.shape[1])
            nn.init.uniform_(w, -bound, bound)
            if b is not None:
                nn.init.uniform_(b, -bound, bound)

    def layer_parameters(self, layer: int) -> tuple[Tensor, Tensor | None]:
        """(weight_ih, bias_ih) of one layer."""
        return getattr(self, f"weight_ih_l{layer}"), getattr(self, f"bias_ih_l{layer}", None)

    def extra_repr(self) -> str:
        s = f"{self.mode}, {self.input_size}, {self.hidden_size}, num_layers={self.num_layers}"
        if self.dropout:
            s += f", dropout={self.dropout}"
        return s + (", batch_first=True" if self.batch_first else "")

    def initial_state(self, batch: int, device: torch.device | str | None = None,
                      dtype: torch.dtype | None = None) -> Tensor:
        """Zero state shaped (num_layers, batch, hidden_size)."""
        p = self.weight_ih_l0
        return torch.zeros(self.num_layers, batch, self.hidden_size, device=device or p.device,
                           dtype=dtype or p.dtype)

    def project(self, layer: int, x: Tensor) -> Tensor:
        """W x_t + b for every step at once, (T, B, G·H); token ids read columns of layer 0's W."""
        w, b = self.layer_parameters(layer)
        if not x.is_floating_point():
            table = w.t() if b is None else w.t() + b
            return F.embedding(x, table)
        if self.gemm_dtype is not None:
            return gemm(x, w, b, self.gemm_dtype)
        return fused.linear(x, w, b) if x.device.type == "cpu" and x.dtype == torch.float32 else \
            F.linear(x, w, b)

    def run_layer(self, layer: int, x: Tensor, h0: Tensor, lengths: Tensor | None = None,
                  record: list[Tensor] | None = None) -> Tensor:
        """One layer's h (T, B, H) over its input, on the path paths.py chooses.

        On the C++ kernels the projection goes to the scan without its bias, and with bf16 GEMMs in
        bf16, as the GEMM made it: the kernels add the bias and widen each value as they read it.
        """
        w, b = self.layer_parameters(layer)
        path = scan_path(self, w, record is not None)
        if path == FUSED:
            if not x.is_floating_point():
                proj = F.embedding(x, w.t())
            elif self.gemm_dtype is not None:
                proj = F.linear(x.to(self.gemm_dtype), w.to(self.gemm_dtype))
            else:
                proj = fused.linear(x, w)
            return fused.min_scan(proj, b, h0, lengths, MIN_GATES[self.mode])
        proj = self.project(layer, x)
        if path == TRITON:
            from .triton_scan import triton_scan  # imports Triton, a GPU machine's (or the dev extra's)

            return triton_scan(proj, h0, lengths, MIN_GATES[self.mode])
        mask = None
        if lengths is not None:
            mask = torch.arange(proj.shape[0], device=proj.device)[:, None] < lengths.to(proj.device)[None, :]
            mask = mask.unsqueeze(-1)
        return step_scan(self.mode, proj, h0, mask, record)

    @torch.no_grad()
    def trace(self, x: Tensor) -> tuple[list[Tensor], list[dict[str, Tensor]]]:
        """Every layer's h (T, B, H) and gates over `x` from a zero state (the Inside view)."""
        states, gates = [], []
        h0 = self.initial_state(x.shape[1], x.device, None if not x.is_floating_point() else x.dtype)
        for layer in range(self.num_layers):
            gates.append(gate_values(self.mode, self.project(layer, x)))
            x = self.run_layer(layer, x, h0[layer])
            states.append(x)
        return states, gates

    def forward(self, input: Tensor | PackedSequence, hx: Tensor | None = None,
                lengths: Tensor | None = None) -> tuple[Tensor | PackedSequence, Tensor]:
        packed = input if isinstance(input, PackedSequence) else None
        if packed is not None:
            input, lengths = pad_packed_sequence(packed)
        x, hx, unbatched = self._shaped(input, hx, packed is not None)
        steps, batch = x.shape[0], x.shape[1]
        if hx is None:
            hx = self.initial_state(batch, x.device, x.dtype if x.is_floating_point() else None)
        if lengths is not None:
            lengths = torch.as_tensor(lengths, device=x.device)
        h_last = []
        for layer in range(self.num_layers):
            if layer > 0 and self.dropout and self.training:
                x = F.dropout(x, self.dropout, training=True)
            record = self.recorded_states if layer == self.num_layers - 1 else None
            h = self.run_layer(layer, x, hx[layer], lengths, record)
            h_last.append(h[-1])  # a padded sequence's state is carried to the last step
            if lengths is not None:
                mask = torch.arange(steps, device=x.device)[:, None] < lengths[None, :]
                h = h * mask.unsqueeze(-1).to(h.dtype)  # padded outputs are zero, as torch's are
            x = h
        h_n = torch.stack(h_last)
        if packed is not None:
            return pack_padded_sequence(x, lengths.cpu(), enforce_sorted=False), h_n
        if unbatched:
            return x.squeeze(1), h_n.squeeze(1)
        return (x.transpose(0, 1) if self.batch_first else x), h_n

    def _shaped(self, input: Any, hx: Any, packed: bool) -> tuple[Tensor, Tensor | None, bool]:
        """Input time-major and batched, the state batched; raise what was expected where they are not."""
        name = f"MinRecurrent({self.mode})"
        if not isinstance(input, Tensor):
            raise TypeError(f"{name}: input must be a Tensor or a PackedSequence, not {type(input).__name__}")
        tokens = not input.is_floating_point()
        rank = (1, 2) if tokens else (2, 3)
        if input.dim() not in rank:
            what = "token ids" if tokens else "input"
            raise ValueError(f"{name}: expected {what} of {rank[0]} (unbatched) or {rank[1]} (batched) "
                             f"dimensions, got shape {tuple(input.shape)}")
        if not tokens and input.shape[-1] != self.input_size:
            raise RuntimeError(f"{name}: input.size(-1) must be equal to input_size. Expected "
                               f"{self.input_size}, got {input.shape[-1]}")
        if not tokens:
            check_input_dtype(name, input, self.weight_ih_l0)  # torch's words, and autocast's exemption
        unbatched = input.dim() == rank[0]
        if unbatched:
            input = input.unsqueeze(1)
            hx = None if hx is None else hx.unsqueeze(1)
        elif self.batch_first and not packed:
            input = input.transpose(0, 1)
        if input.shape[0] == 0:
            raise RuntimeError(f"{name}: Expected sequence length to be larger than 0 (input shape "
                               f"{tuple(input.shape)})")
        expected = (self.num_layers, input.shape[1], self.hidden_size)
        if hx is not None and tuple(hx.shape) != expected:
            got = tuple(hx.shape[:1] + hx.shape[2:]) if unbatched else tuple(hx.shape)
            want = (self.num_layers, self.hidden_size) if unbatched else expected
            raise RuntimeError(f"{name}: Expected hidden size {want}, got {list(got)}: h_0 must have shape "
                               "(num_layers, batch, hidden_size)")
        return input, hx, unbatched
