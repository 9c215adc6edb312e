"""Text generation (temperature, top-k, priming text) and top-k prediction for the classifier."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

from ..data.names import pad_batch
from ..data.vocab import Vocab
from .networks import CharLM, NameClassifier, eval_mode


def next_token_distribution(logits: Tensor, temperature: float, top_k: int = 0) -> Tensor:
    """Probabilities after temperature scaling and keeping the top_k logits (0 keeps all)."""
    if temperature <= 0:
        raise ValueError("temperature must be > 0")
    logits = logits.double() / temperature
    if 0 < top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    return torch.softmax(logits, dim=-1)


@torch.no_grad()
def generate(model: CharLM, vocab: Vocab, length: int = 300, prime: str = "",
             temperature: float = 0.8, top_k: int = 0,
             generator: torch.Generator | None = None) -> str:
    """`prime` followed by `length` sampled characters; unknown prime characters read as unknown."""
    with eval_mode(model):
        chars = _stream(model, vocab, prime, temperature, top_k, generator)
        return prime + "".join(next(chars) for _ in range(length))


@torch.no_grad()
def generate_lines(model: CharLM, vocab: Vocab, count: int, temperature: float = 0.8, top_k: int = 0,
                   generator: torch.Generator | None = None, max_line: int = 500) -> list[str]:
    """`count` complete lines, each sampled from the start of a line (for one-item-per-line corpora).

    A line that runs past `max_line` characters without ending is cut there and kept, so a model
    that never learned to end a line still answers.
    """
    lines: list[str] = []
    current: list[str] = []
    with eval_mode(model):
        chars = _stream(model, vocab, "", temperature, top_k, generator)
        while len(lines) < count:
            ch = next(chars)
            if ch == "\n" or len(current) >= max_line:
                lines.append("".join(current))
                current = []
            else:
                current.append(ch)
    return lines


def _stream(model: CharLM, vocab: Vocab, prime: str, temperature: float, top_k: int,
            generator: torch.Generator | None) -> Iterator[str]:
    """Sampled characters after `prime` (or after a line break when it is empty), one at a time.

    The caller holds eval mode and no_grad: a context manager inside a generator would stay open
    in the caller's code between two characters.
    """
    device = next(model.parameters()).device
    if not prime:
        prime = "\n" if "\n" in vocab.stoi else vocab.itos[min(1, len(vocab) - 1)]
    ids = vocab.encode(prime).to(device).view(-1, 1)
    logits, state = model(ids)
    last = logits[-1, 0]
    # sampling on the CPU keeps a seeded generator reproducible on any device
    while True:
        last = last.cpu()
        if len(vocab) > 1:
            last = last.clone()
            last[0] = float("-inf")  # never emit the unknown symbol
        probs = next_token_distribution(last, temperature, top_k)
        nxt = int(torch.multinomial(probs, 1, generator=generator))
        yield vocab.itos[nxt]
        logits, state = model(torch.tensor([[nxt]], device=device), state)
        last = logits[-1, 0]


@torch.no_grad()
def classify(model: NameClassifier, vocab: Vocab, labels: list[str], names: list[str],
             top_k: int = 3) -> list[list[tuple[str, float]]]:
    """For each name, its top_k (language, probability) pairs, likeliest first."""
    from ..data.names import normalise_name

    if not names:
        return []
    with eval_mode(model):
        device = next(model.parameters()).device
        clean = [normalise_name(n) for n in names]
        x, lengths = pad_batch(clean, vocab)
        probs = torch.softmax(model(x.to(device), lengths.to(device)).double(), dim=-1).cpu()
        k = max(1, min(top_k, len(labels)))
        values, idx = probs.topk(k, dim=-1)
        return [[(labels[i], float(v)) for v, i in zip(vs.tolist(), ix.tolist())]
                for vs, ix in zip(values, idx)]
