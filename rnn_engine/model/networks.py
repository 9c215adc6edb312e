"""The models: character language models (classic cells, and a residual one for the parallel cells)
and a surname → language classifier."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..nn import fused
from ..nn.minimal import MinRecurrent, gate_values
from ..nn.precision import gemm
from ..nn.recurrent import State
from ..nn.torch_layers import recurrent_layer

MLP_WIDTH = 0  # ResidualLM's MLP, this many times the width; 0: none (measured in docs/measured.md)


class CharLM(nn.Module):
    """Characters → Recurrent → linear head over the vocabulary.

    Layer 0 takes character ids directly: `weight_ih_l0` (gates·H × V) is the embedding and the
    input projection fused into one table, so the input side of every step is a gather. With
    impl "torch" the recurrent layers are torch.nn's, with the same parameters.
    """

    task = "charlm"

    def __init__(self, vocab_size: int, cell: str = "gru", hidden_size: int = 512,
                 num_layers: int = 1, nonlinearity: str = "tanh", dropout: float = 0.0,
                 impl: str = "scratch") -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.rnn = recurrent_layer(impl, cell, vocab_size, hidden_size, num_layers, nonlinearity, dropout)
        self.dropout = dropout
        self.head = nn.Linear(hidden_size, vocab_size)
        # U(-1, 1) is the scale of an N(0, 1) embedding seen through a linear layer; torch's
        # 1/sqrt(H) bound here starts every input near zero and was measured to learn slower
        nn.init.uniform_(self.rnn.weight_ih_l0, -1.0, 1.0)

    def forward(self, tokens: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """tokens (T, B) → logits (T, B, V) and the final state."""
        out, state = self.rnn(tokens, state)
        if self.dropout and self.training:
            out = F.dropout(out, self.dropout, training=True)
        low = getattr(self.rnn, "gemm_dtype", None)
        if low is not None:
            return gemm(out, self.head.weight, self.head.bias, low), state
        # self.head holds the parameters; fused.linear is F.linear with faster GEMMs on the CPU
        return fused.linear(out, self.head.weight, self.head.bias), state


def _drop(x: Tensor, p: float, training: bool) -> Tensor:
    """Dropout with its mask drawn as random bytes: eight per generator call where torch's CPU
    bernoulli_ draws one number per element (2 ms against 25 ms for a 100×64×512 mask on two
    cores; it was 40% of a minGRU step). The drop rate is p rounded to a multiple of 1/256."""
    if not p or not training:
        return x  # F.dropout copies its input even at p = 0: a pass over (T, B, H) for nothing
    if x.device.type != "cpu":
        return F.dropout(x, p, True)
    cut = min(255, round(p * 256))
    words = torch.empty((x.numel() + 7) // 8, dtype=torch.int64).random_()
    keep = words.view(torch.uint8)[: x.numel()].view(x.shape) >= cut
    return x * (keep * (256.0 / (256 - cut))).to(x.dtype)


class ResidualBlock(nn.Module):
    """x + minRNN(norm(x)), then, with an MLP, x + MLP(norm(x)): one layer of the residual language model."""

    def __init__(self, cell: str, size: int, mlp: int, dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(size)
        self.rnn = MinRecurrent(cell, size, size, 1)
        self.mlp = mlp
        if mlp:
            self.norm2 = nn.LayerNorm(size)
            self.up = nn.Linear(size, mlp * size)
            self.down = nn.Linear(mlp * size, size)
        self.dropout = dropout

    def forward(self, x: Tensor, h: Tensor, low: torch.dtype | None) -> tuple[Tensor, Tensor, Tensor]:
        """(the block's output, its layer's h_t of every step, h_n)."""
        states, h_n = self.rnn(self.norm1(x), h)
        x = x + _drop(states, self.dropout, self.training)
        if self.mlp:
            z = gemm(F.gelu(gemm(self.norm2(x), self.up.weight, self.up.bias, low)), self.down.weight,
                     self.down.bias, low)
            x = x + _drop(z, self.dropout, self.training)
        return x, states, h_n


class ResidualLM(nn.Module):
    """Characters → embedding → residual blocks of (LayerNorm, minGRU/minLSTM) → LayerNorm → head.

    The parallel cells' language model (Feng et al. 2024 train theirs inside such blocks): a stack
    of minimal recurrent layers has no nonlinearity between its time steps, so each sits in a
    pre-norm residual block, as in Mamba's and the Transformer's. With `mlp` > 0 each block also
    has a position-wise MLP (`mlp` × the width, GELU); MLP_WIDTH = 0 leaves it out, for the speed
    that is these cells' point on a CPU (docs/measured.md). The state is one h per block,
    (num_layers, B, H), carried between windows as the classic cells' is.
    """

    task = "charlm"

    def __init__(self, vocab_size: int, cell: str = "mingru", hidden_size: int = 512, num_layers: int = 2,
                 dropout: float = 0.0, mlp: int = MLP_WIDTH) -> None:
        super().__init__()
        self.vocab_size, self.cell, self.num_layers = vocab_size, cell, num_layers
        self.embed = nn.Embedding(vocab_size, hidden_size)
        self.blocks = nn.ModuleList(ResidualBlock(cell, hidden_size, mlp, dropout) for _ in range(num_layers))
        self.norm = nn.LayerNorm(hidden_size)
        self.head = nn.Linear(hidden_size, vocab_size)
        self.dropout = dropout
        self.gemm_dtype: torch.dtype | None = None  # bf16: every GEMM reads bf16 (set_gemm_dtype)

    @property
    def rnn(self) -> MinRecurrent:
        """The top block's recurrent layer: the one whose states the gradient-through-time pane reads."""
        return self.blocks[-1].rnn

    def forward(self, tokens: Tensor, state: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """tokens (T, B) → logits (T, B, V) and the final state (num_layers, B, H)."""
        x = _drop(self.embed(tokens), self.dropout, self.training)
        if state is None:
            state = x.new_zeros(self.num_layers, tokens.shape[1], x.shape[-1])
        last = []
        for k, block in enumerate(self.blocks):
            x, _, h_n = block(x, state[k:k + 1], self.gemm_dtype)
            last.append(h_n[0])
        return gemm(self.norm(x), self.head.weight, self.head.bias, self.gemm_dtype), torch.stack(last)

    @torch.no_grad()
    def trace_layers(self, tokens: Tensor) -> tuple[list[Tensor], list[dict[str, Tensor]]]:
        """Each block's h_t (T, B, H) and its gates over `tokens` from a zero state (the Inside view)."""
        x = self.embed(tokens)
        states, gates = [], []
        h0 = x.new_zeros(1, tokens.shape[1], x.shape[-1])
        for block in self.blocks:
            gates.append(gate_values(block.rnn.mode, block.rnn.project(0, block.norm1(x))))
            x, h, _ = block(x, h0, self.gemm_dtype)
            states.append(h)
        return states, gates


class NameClassifier(nn.Module):
    """Characters of a name → Recurrent → state after the name's last character → class logits.

    Bidirectional, the head reads the forward state after the last letter beside the backward
    state after the first: the whole name, read both ways.
    """

    task = "names"

    def __init__(self, vocab_size: int, num_classes: int, cell: str = "gru",
                 hidden_size: int = 256, num_layers: int = 1, nonlinearity: str = "tanh",
                 dropout: float = 0.0, bidirectional: bool = False, impl: str = "scratch") -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.num_classes = num_classes
        self.rnn = recurrent_layer(impl, cell, vocab_size, hidden_size, num_layers, nonlinearity, dropout,
                                   bidirectional)
        self.dropout = dropout
        self.directions = 2 if bidirectional else 1
        self.head = nn.Linear(hidden_size * self.directions, num_classes)
        nn.init.uniform_(self.rnn.weight_ih_l0, -1.0, 1.0)

    def forward(self, tokens: Tensor, lengths: Tensor | None = None) -> Tensor:
        """tokens (T, B) padded, lengths (B,) → logits (B, C)."""
        _, h_n = self.rnn(tokens, None, lengths)
        h = h_n[0] if isinstance(h_n, tuple) else h_n
        last = h[-1] if self.directions == 1 else torch.cat([h[-2], h[-1]], dim=-1)
        if self.dropout and self.training:
            last = F.dropout(last, self.dropout, training=True)
        return gemm(last, self.head.weight, self.head.bias, getattr(self.rnn, "gemm_dtype", None))


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """`model` in eval mode (no dropout) for a while, then back in the mode it was in."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def detach_state(state: State) -> State:
    """Cut the graph at a window boundary (truncated BPTT) but keep the values."""
    if isinstance(state, tuple):
        return tuple(s.detach() for s in state)  # type: ignore[return-value]
    return state.detach()


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def state_to(state: State | None, target: torch.device | torch.dtype) -> State | None:
    """A carried state (h, or (h, c)) moved to a device or cast to a dtype."""
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(s.to(target) for s in state)  # type: ignore[return-value]
    return state.to(target)


def set_gemm_dtype(model: nn.Module, low: torch.dtype | None) -> bool:
    """Make a scratch model's GEMMs read `low` (bf16) or fp32 (None); False where it cannot.

    The tutorial models and torch.nn layers stay as they are: the first run in fp32, the second
    under torch.autocast (precision.autocast).
    """
    layers = [m for m in model.modules() if hasattr(m, "gemm_dtype")]
    if not layers:
        return low is None
    for m in layers:
        m.gemm_dtype = low
    return True
