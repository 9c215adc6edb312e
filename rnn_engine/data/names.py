"""Names directories (one `<Language>.txt` per class): reading, a stratified split, padded batches."""

from __future__ import annotations

import os
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from ..errors import DataError
from .text import read_text
from .vocab import Vocab


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
