"""The classic PyTorch tutorials' models, written from their equations: weak on purpose, to see why.

- `IndexRNNLM`: a character LM that reads each character as its index, one number, through
  Linear(1, H) without bias: h_t = tanh(W_i2h x_t + W_h2h h_{t-1} + b_h2h), logits = h2o(h_t).
- `TensorRNNLM`: a character LM from raw tensors: an embedding table E (randn), then
  h_t = tanh(E[c_t] W_xh + h_{t-1} W_hh + b_h), logits = h_t W_hy + b_y.
- `ConcatRNNClassifier`: the name classifier that concatenates the one-hot letter with the hidden
  state: h_t = sigmoid(i2h([x_t, h_{t-1}])), logits = i2o([x_T, h_{T-1}]) at the last letter, from
  a kaiming-uniform initial hidden state.

Each has a `rnn` part with the interface of `Recurrent` (`forward(input, hx, lengths)` → outputs and
h_n, `recorded_states`), so the trainer, diagnostics, sampling and the Inside view treat them like
the workbench's own models.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class _Steps(nn.Module):
    """A one-layer recurrence over (T, B) token ids: subclasses give the input side and the step."""

    mode = "rnn"
    num_layers = 1

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.recorded_states: list[Tensor] | None = None

    def initial_state(self, batch: int, device: torch.device | str | None = None,
                      dtype: torch.dtype | None = None) -> Tensor:
        p = next(self.parameters())
        return torch.zeros(1, batch, self.hidden_size, device=device or p.device, dtype=dtype or p.dtype)

    def inputs(self, tokens: Tensor) -> Tensor:
        raise NotImplementedError

    def step(self, x: Tensor, h: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(self, tokens: Tensor, hx: Tensor | None = None,
                lengths: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """tokens (T, B) → h_t of every step (T, B, H) and h_n (1, B, H)."""
        h = (hx if hx is not None else self.initial_state(tokens.shape[1], tokens.device))[0]
        outputs = []
        for t, x in enumerate(self.inputs(tokens).unbind(0)):
            h_new = self.step(x, h)
            if lengths is not None:
                h_new = torch.where((t < lengths)[:, None], h_new, h)
            h = h_new
            if self.recorded_states is not None:
                self.recorded_states.append(h)
            outputs.append(h)
        return torch.stack(outputs), h[None]


class IndexRNN(_Steps):
    """h_t = tanh(W_i2h x_t + W_h2h h_{t-1} + b_h2h) with x_t the character's index, a single number."""

    def __init__(self, hidden_size: int) -> None:
        super().__init__(hidden_size)
        self.i2h = nn.Linear(1, hidden_size, bias=False)
        self.h2h = nn.Linear(hidden_size, hidden_size)

    def inputs(self, tokens: Tensor) -> Tensor:
        # the index itself, not a one-hot vector: 'e' and 'f' look almost alike to this model
        return self.i2h(tokens.to(self.h2h.weight.dtype).unsqueeze(-1))

    def step(self, x: Tensor, h: Tensor) -> Tensor:
        return torch.tanh(x + self.h2h(h))


class TensorRNN(_Steps):
    """h_t = tanh(E[c_t] W_xh + h_{t-1} W_hh + b_h), with raw parameter tensors."""

    def __init__(self, vocab_size: int, hidden_size: int, embedding_size: int) -> None:
        super().__init__(hidden_size)
        self.embedding = nn.Parameter(torch.randn(vocab_size, embedding_size))
        # small random weights, as hand-made RNNs from raw tensors start
        self.w_xh = nn.Parameter(torch.randn(embedding_size, hidden_size) * 0.01)
        self.w_hh = nn.Parameter(torch.randn(hidden_size, hidden_size) * 0.01)
        self.b_h = nn.Parameter(torch.zeros(hidden_size))

    def inputs(self, tokens: Tensor) -> Tensor:
        return self.embedding[tokens] @ self.w_xh

    def step(self, x: Tensor, h: Tensor) -> Tensor:
        return torch.tanh(x + h @ self.w_hh + self.b_h)


class ConcatRNN(_Steps):
    """h_t = sigmoid(i2h([onehot(c_t), h_{t-1}])), from a kaiming-uniform initial state."""

    def __init__(self, vocab_size: int, hidden_size: int) -> None:
        super().__init__(hidden_size)
        self.vocab_size = vocab_size
        self.i2h = nn.Linear(vocab_size + hidden_size, hidden_size)
        # drawn once (the tutorial draws one per name): evaluations stay reproducible
        self.register_buffer("h0", nn.init.kaiming_uniform_(torch.empty(1, hidden_size), a=math.sqrt(5)))

    def initial_state(self, batch: int, device: torch.device | str | None = None,
                      dtype: torch.dtype | None = None) -> Tensor:
        return self.h0.to(device=device, dtype=dtype)[None].expand(1, batch, self.hidden_size)

    def inputs(self, tokens: Tensor) -> Tensor:
        return F.one_hot(tokens, self.vocab_size).to(self.i2h.weight.dtype)

    def step(self, x: Tensor, h: Tensor) -> Tensor:
        return torch.sigmoid(self.i2h(torch.cat([x, h], dim=-1)))


class IndexRNNLM(nn.Module):
    """The index-input character LM: IndexRNN and an h2o readout."""

    task = "charlm"

    def __init__(self, vocab_size: int, hidden_size: int = 256) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.rnn = IndexRNN(hidden_size)
        self.h2o = nn.Linear(hidden_size, vocab_size)

    def forward(self, tokens: Tensor, state: Tensor | None = None) -> tuple[Tensor, Tensor]:
        out, h_n = self.rnn(tokens, state)
        return self.h2o(out), h_n


class TensorRNNLM(nn.Module):
    """The raw-tensor character LM: TensorRNN and logits = h W_hy + b_y."""

    task = "charlm"

    def __init__(self, vocab_size: int, hidden_size: int = 100, embedding_size: int = 100) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.rnn = TensorRNN(vocab_size, hidden_size, embedding_size)
        self.w_hy = nn.Parameter(torch.randn(hidden_size, vocab_size) * 0.01)
        self.b_y = nn.Parameter(torch.zeros(vocab_size))

    def forward(self, tokens: Tensor, state: Tensor | None = None) -> tuple[Tensor, Tensor]:
        out, h_n = self.rnn(tokens, state)
        return out @ self.w_hy + self.b_y, h_n


class ConcatRNNClassifier(nn.Module):
    """The concat-sigmoid name classifier: logits = i2o([x_T, h_{T-1}]) at each name's last letter."""

    task = "names"

    def __init__(self, vocab_size: int, num_classes: int, hidden_size: int = 128) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.num_classes = num_classes
        self.rnn = ConcatRNN(vocab_size, hidden_size)
        self.i2o = nn.Linear(vocab_size + hidden_size, num_classes)

    def forward(self, tokens: Tensor, lengths: Tensor | None = None) -> Tensor:
        """tokens (T, B) padded, lengths (B,) → logits (B, C)."""
        steps, batch = tokens.shape
        if lengths is None:
            lengths = torch.full((batch,), steps, device=tokens.device)
        lengths = lengths.to(tokens.device)
        states, _ = self.rnn(tokens, None, lengths)
        h0 = self.rnn.initial_state(batch, tokens.device, states.dtype)
        before = torch.cat([h0, states[:-1]])  # h_{t-1} for every t
        last = (lengths - 1).clamp(min=0)
        rows = torch.arange(batch, device=tokens.device)
        x_last = F.one_hot(tokens[last, rows], self.vocab_size).to(states.dtype)
        return self.i2o(torch.cat([x_last, before[last, rows]], dim=-1))
