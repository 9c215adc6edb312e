"""Text corpora: reading any file with clear errors, the validation split, and batch streams for TBPTT."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from ..errors import DataError
from .vocab import Vocab


def read_text(path: str | os.PathLike, encoding: str = "utf-8", errors: str = "strict") -> str:
    """The whole file as text; DataError names the file and what to do when that is impossible."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: no such file")
    if p.is_dir():
        raise DataError(f"{p}: is a directory, expected a text file")
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise DataError(f"{p}: cannot be read ({exc.strerror or exc})") from None
    if not raw.strip():
        raise DataError(f"{p}: is empty")
    if b"\x00" in raw[:65536] and errors == "strict":
        raise DataError(f"{p}: looks like a binary file (it contains NUL bytes), not text")
    try:
        return raw.decode(encoding, errors=errors)
    except LookupError:
        raise DataError(f"{p}: unknown encoding {encoding!r}") from None
    except UnicodeDecodeError as exc:
        bad = raw[exc.start:exc.start + 8]
        raise DataError(
            f"{p}: not valid {encoding} at byte {exc.start} ({bad!r}); "
            "pass --encoding (e.g. latin-1) or --errors replace"
        ) from None


VAL_FRACTION = 0.1  # the end of a text held out for validation


def train_end(length: int, val_fraction: float = VAL_FRACTION) -> int:
    """Where a text of `length` characters splits: training before, validation from here on."""
    return length - int(length * val_fraction)


@dataclass
class CharCorpus:
    """A text split into a training part and the last 10% for validation, encoded with one vocab."""

    vocab: Vocab
    train: Tensor
    val: Tensor
    source: str = ""

    @classmethod
    def from_text(cls, text: str, val_fraction: float = VAL_FRACTION, source: str = "") -> CharCorpus:
        # contiguous split (validation is the end of the file), as nanoGPT does for tinyshakespeare
        n_train = train_end(len(text), val_fraction)
        vocab = Vocab.from_text(text, end=n_train)
        ids = vocab.encode_compact(text)
        return cls(vocab, ids[:n_train], ids[n_train:], source)

    @classmethod
    def from_file(cls, path: str | os.PathLike, encoding: str = "utf-8",
                  errors: str = "strict") -> CharCorpus:
        return cls.from_text(read_text(path, encoding, errors), source=str(path))

    def check_fits(self, batch_size: int, seq_len: int) -> None:
        """DataError when the text is too short for one batch of training or of validation."""
        need = batch_size * (seq_len + 1)
        where = self.source or "corpus"
        if len(self.train) < need:
            raise DataError(
                f"{where}: {len(self.train)} training characters, but batch_size {batch_size} x "
                f"(seq_len {seq_len} + 1) needs {need}; use a longer text or smaller batch_size/seq_len"
            )
        if len(self.val) < seq_len + 1:
            raise DataError(
                f"{where}: the validation part (last 10%) has {len(self.val)} characters, "
                f"fewer than seq_len + 1 = {seq_len + 1}; use a longer text or smaller seq_len"
            )


class StreamBatches:
    """B contiguous streams over a token sequence, cut into (T, B) windows for stateful TBPTT.

    Stream b reads positions b*n … (b+1)*n-1, so the window after (x, y) continues every stream
    where it stopped; the trainer carries the hidden state across windows (detached), as char-rnn.
    """

    def __init__(self, ids: Tensor, batch_size: int, seq_len: int) -> None:
        n = (len(ids) - 1) // batch_size
        if n < 1:
            raise DataError(f"{len(ids)} tokens cannot fill {batch_size} streams")
        self.seq_len = seq_len
        self.batch_size = batch_size
        # (B, n) views of the ids, no copies: only the current window is materialised
        self.x = ids[: n * batch_size].view(batch_size, n)
        self.y = ids[1: n * batch_size + 1].view(batch_size, n)
        self.steps = n

    @classmethod
    def spread(cls, ids: Tensor, batch_size: int, seq_len: int, chars: int) -> StreamBatches:
        """Streams over a fixed subset of about `chars` tokens: B windows spread evenly over `ids`.

        Evaluating a 20 MB validation split takes minutes; the same windows every time keep
        routine evaluations comparable with each other while their cost stays flat. With `chars`
        0, or at least the whole sequence, the streams cover all of it.
        """
        n = chars // batch_size
        if chars <= 0 or n * batch_size >= len(ids) - 1 or n < 1:
            return cls(ids, batch_size, seq_len)
        # integer steps: linspace in float32 rounds the last start past the end of a long split
        last = len(ids) - n - 1
        starts = torch.tensor([last * b // max(batch_size - 1, 1) for b in range(batch_size)])
        index = starts[:, None] + torch.arange(n)[None, :]
        out = cls.__new__(cls)
        out.seq_len, out.batch_size, out.steps = seq_len, batch_size, n
        out.x, out.y = ids[index], ids[index + 1]
        return out

    def rows(self, part: slice) -> StreamBatches:
        """Only the streams in `part`: one rank's share of the batch, reading what it would read."""
        out = StreamBatches.__new__(StreamBatches)
        out.seq_len, out.steps = self.seq_len, self.steps
        out.x, out.y = self.x[part], self.y[part]
        out.batch_size = out.x.shape[0]
        return out

    @property
    def tokens(self) -> int:
        """Tokens predicted in one pass over all windows."""
        return self.steps * self.batch_size

    def __len__(self) -> int:
        return (self.steps + self.seq_len - 1) // self.seq_len

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        for i in range(len(self)):
            yield self.window(i)

    def window(self, index: int) -> tuple[Tensor, Tensor]:
        # time-major int64 windows: ids are stored compact, embedding and cross-entropy want int64
        i = index * self.seq_len
        return (self.x[:, i: i + self.seq_len].t().long().contiguous(),
                self.y[:, i: i + self.seq_len].t().long().contiguous())


