"""Characters to ids and back, with an unknown symbol for characters a model has never seen."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

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
