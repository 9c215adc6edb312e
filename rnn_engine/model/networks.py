"""The two models: a character language model and a surname → language classifier."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..nn import fused
from ..nn.precision import gemm
from ..nn.recurrent import State
from ..nn.torch_layers import recurrent_layer


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
    rnn = getattr(model, "rnn", None)
    if not hasattr(rnn, "gemm_dtype"):
        return low is None
    rnn.gemm_dtype = low
    return True
