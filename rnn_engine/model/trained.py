"""A trained model from a run or a checkpoint file, ready to generate text or to classify names."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..rundir.runs import resolve_model
from .checkpoint import Checkpoint
from .checkpoint import load as load_checkpoint
from .sampling import classify, generate


@dataclass
class TrainedModel:
    """The network a checkpoint holds, in eval mode, with the vocabulary and labels it was trained with."""

    checkpoint: Checkpoint
    network: nn.Module
    path: Path

    @property
    def task(self) -> str:
        """'charlm' for a language model, 'names' for a name classifier."""
        return self.checkpoint.config.task

    @property
    def labels(self) -> list[str]:
        return list(self.checkpoint.labels)

    def generate(self, prime: str = "", length: int = 300, temperature: float = 0.8, top_k: int = 0,
                 seed: int | None = None) -> str:
        """`prime` followed by `length` characters the language model writes."""
        if self.task != "charlm":
            raise ValueError(f"{self.path} is a name classifier: use classify(names)")
        if length < 0 or not temperature > 0 or top_k < 0:
            raise ValueError("length and top_k must be >= 0 and temperature > 0, "
                             f"not length={length}, temperature={temperature}, top_k={top_k}")
        g = torch.Generator().manual_seed(seed if seed is not None else time.time_ns() % 2**31)
        return generate(self.network, self.checkpoint.vocab, length, prime, temperature, top_k, g)

    def classify(self, names: str | list[str], top_k: int = 3) -> list[list[tuple[str, float]]]:
        """For each name, its `top_k` likeliest languages with their probabilities, likeliest first."""
        if self.task != "names":
            raise ValueError(f"{self.path} is a language model: use generate(prime)")
        names = [names] if isinstance(names, str) else list(names)
        if not names or not all(isinstance(n, str) and n.strip() for n in names) or top_k < 1:
            raise ValueError("classify takes one or more non-empty names and top_k >= 1")
        return classify(self.network, self.checkpoint.vocab, self.labels, names, top_k)


def load(spec: str | os.PathLike, runs_dir: str | os.PathLike = "runs", device: str = "cpu") -> TrainedModel:
    """The model of a run (its id or the start of it, its directory, or 'latest') or of a .pt file.

    A run directory gives its last checkpoint. Raises RunNotFound for a run that is not there and
    CheckpointError for a file that is not a readable checkpoint (or that holds code).
    """
    path = resolve_model(str(spec), runs_dir)
    ck = load_checkpoint(path)
    return TrainedModel(ck, ck.build_model(device), path)
