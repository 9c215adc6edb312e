"""Corpora and names: loading with clear errors, vocabularies, splits and batch streams."""

from __future__ import annotations

import os
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .errors import DataError

UNK = "\ufffd"  # stands for any character the training text did not contain
CHUNK = 1 << 22  # characters handled at a time when scanning or encoding a corpus


class Vocab:
    """Characters ↔ ids; id 0 is the unknown symbol."""

    def __init__(self, chars: list[str]) -> None:
        if chars and chars[0] == UNK:
            chars = chars[1:]
        self.itos: list[str] = [UNK, *chars]
        self.stoi: dict[str, int] = {c: i for i, c in enumerate(self.itos)}

    @classmethod
    def from_text(cls, text: str, end: int | None = None) -> Vocab:
        """The characters of text[:end], read in slices so a big corpus is never copied whole."""
        end = len(text) if end is None else end
        chars: set[str] = set()
        for i in range(0, end, CHUNK):
            chars.update(text[i:min(i + CHUNK, end)])
        return cls(sorted(chars - {UNK}))

    def __len__(self) -> int:
        return len(self.itos)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and other.itos == self.itos

    def encode(self, text: str) -> Tensor:
        get = self.stoi.get
        return torch.tensor([get(c, 0) for c in text], dtype=torch.long)

    def encode_compact(self, text: str) -> Tensor:
        """Ids of a long text in the smallest integer type that holds them, encoded in slices.

        A Python list of ids costs ~8 bytes a character and a long tensor 8 more; int16 ids
        built slice by slice keep a 1 GB corpus at about 2 GB beside its text.
        """
        dtype = np.int16 if len(self.itos) < 2**15 else np.int32
        top = max((ord(c) for c in self.itos[1:]), default=0)
        table = np.zeros(top + 1, dtype=dtype)  # unseen code points stay 0, the unknown symbol
        for i, c in enumerate(self.itos[1:], start=1):
            table[ord(c)] = i
        out = np.empty(len(text), dtype=dtype)
        for i in range(0, len(text), CHUNK):
            part = text[i:i + CHUNK]
            cps = np.frombuffer(part.encode("utf-32-le"), dtype=np.uint32)
            out[i:i + len(part)] = np.where(cps <= top, table[np.minimum(cps, top)], 0)
        return torch.from_numpy(out)

    def decode(self, ids: list[int] | Tensor) -> str:
        if isinstance(ids, Tensor):
            ids = ids.tolist()
        return "".join(self.itos[i] for i in ids)


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


def normalise_name(name: str) -> str:
    """ASCII form of a name (unidecode), stripped; may be empty for symbols unidecode drops."""
    from unidecode import unidecode

    return " ".join(unidecode(name).split())


@dataclass
class NamesData:
    """Surnames with language labels, a char vocab from the training names, and a stratified split."""

    labels: list[str]
    vocab: Vocab
    train: list[tuple[str, int]]
    test: list[tuple[str, int]]
    dropped: int = 0  # lines that normalised to nothing
    duplicates_removed: int = 0
    source: str = ""

    @classmethod
    def from_dir(cls, path: str | os.PathLike, test_fraction: float = 0.1, seed: int = 0,
                 dedupe: bool = False) -> NamesData:
        pairs, labels, dropped = read_names_dir(path)
        removed = 0
        if dedupe:
            unique = list(dict.fromkeys(pairs))
            removed = len(pairs) - len(unique)
            pairs = unique
        train, test = stratified_split(pairs, len(labels), test_fraction, seed)
        vocab = Vocab.from_text("".join(n for n, _ in train))
        return cls(labels, vocab, train, test, dropped, removed, str(path))

    def class_counts(self) -> Counter:
        return Counter(label for _, label in self.train)


def read_names_dir(path: str | os.PathLike) -> tuple[list[tuple[str, int]], list[str], int]:
    """(name, label id) pairs from `<Language>.txt` files, the sorted labels, and dropped lines."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: no such directory")
    if not p.is_dir():
        raise DataError(f"{p}: is a file; expected a directory of <Language>.txt files")
    files = sorted(f for f in p.glob("*.txt") if f.is_file())
    if not files:
        raise DataError(f"{p}: no .txt files; expected one <Language>.txt per class, one name a line")
    labels: list[str] = []
    pairs: list[tuple[str, int]] = []
    dropped = 0
    for f in files:
        lines = read_text(f, errors="replace").splitlines() if f.stat().st_size else []
        names = []
        for line in lines:
            if not line.strip():
                continue
            name = normalise_name(line)
            if name:
                names.append(name)
            else:
                dropped += 1
        if names:
            label = len(labels)
            labels.append(f.stem)
            pairs.extend((n, label) for n in names)
    if len(labels) < 2:
        raise DataError(f"{p}: needs names for at least two languages, found {len(labels)}")
    return pairs, labels, dropped


def stratified_split(pairs: list[tuple[str, int]], n_classes: int, fraction: float,
                     seed: int) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """Split every class by the same fraction (at least one test item where a class has two)."""
    rng = random.Random(seed)
    by_class: list[list[tuple[str, int]]] = [[] for _ in range(n_classes)]
    for pair in pairs:
        by_class[pair[1]].append(pair)
    train, test = [], []
    for items in by_class:
        rng.shuffle(items)
        k = round(len(items) * fraction)
        if k == 0 and len(items) >= 2 and fraction > 0:
            k = 1
        test.extend(items[:k])
        train.extend(items[k:])
    rng.shuffle(train)
    return train, test


def pad_batch(names: list[str], vocab: Vocab) -> tuple[Tensor, Tensor]:
    """(T, B) ids padded with 0 and the lengths; every name has at least one character."""
    lengths = torch.tensor([max(len(n), 1) for n in names], dtype=torch.long)
    out = torch.zeros(int(lengths.max()), len(names), dtype=torch.long)
    for b, name in enumerate(names):
        if name:
            out[: len(name), b] = vocab.encode(name)
    return out, lengths


def bucketed_batches(items: list[tuple[str, int]], batch_size: int, vocab: Vocab,
                     rng: random.Random | None, pool: int = 50
                     ) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
    """Batches of names of similar length, so little of each batch is padding (see bucket_names)."""
    for batch in bucket_names(items, batch_size, rng, pool):
        x, lengths = pad_batch([n for n, _ in batch], vocab)
        yield x, lengths, torch.tensor([label for _, label in batch], dtype=torch.long)


def bucket_names(items: list[tuple[str, int]], batch_size: int, rng: random.Random | None,
                 pool: int = 50) -> list[list[tuple[str, int]]]:
    """The (name, label) groups of `bucketed_batches`, before padding.

    Items are shuffled (when rng is given), cut into pools of `pool` batches, sorted by length within
    a pool, and the resulting batches are shuffled again.
    """
    order = list(items)
    if rng is not None:
        rng.shuffle(order)
    batches = []
    span = batch_size * pool
    for start in range(0, len(order), span):
        chunk = sorted(order[start: start + span], key=lambda p: len(p[0]))
        batches.extend(chunk[i: i + batch_size] for i in range(0, len(chunk), batch_size))
    if rng is not None:
        rng.shuffle(batches)
    return batches
