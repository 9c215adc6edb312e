"""Checkpoints: tensors and plain data only, written atomically, loaded without unpickling code."""

from __future__ import annotations

import os
import pickle
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..config import MIN_CELLS, RunConfig
from ..data.vocab import Vocab
from ..errors import CheckpointError
from ..rundir.layout import RunDir
from .networks import CharLM, NameClassifier, ResidualLM

FORMAT = "rnn-workbench/1"


@dataclass
class Checkpoint:
    """What a run needs to continue or to be used: weights, optimiser state, config, vocab, step."""

    config: RunConfig
    vocab: Vocab
    model_state: dict[str, torch.Tensor]
    optimizer_state: dict[str, Any] | None = None
    labels: list[str] = field(default_factory=list)
    step: int = 0
    epoch: int = 0
    best_val_loss: float = float("inf")
    extra: dict[str, Any] = field(default_factory=dict)

    def build_model(self, device: torch.device | str = "cpu") -> nn.Module:
        """The model these weights belong to, on `device`, in eval mode."""
        model = build_model(self.config, len(self.vocab), len(self.labels))
        try:
            model.load_state_dict(self.model_state)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()
            raise CheckpointError(f"weights do not fit the configured model: {first[-1].strip()}") from None
        dtype = torch.float64 if self.config.dtype == "float64" else torch.float32
        return model.to(device=device, dtype=dtype).eval()


def build_model(config: RunConfig, vocab_size: int, num_classes: int = 0) -> nn.Module:
    """A fresh model for a config (CharLM or NameClassifier, or a tutorial's model)."""
    from .tutorials import ConcatRNNClassifier, IndexRNNLM, TensorRNNLM

    if config.arch == "index-rnn":
        return IndexRNNLM(vocab_size, config.hidden_size)
    if config.arch == "tensor-rnn":
        return TensorRNNLM(vocab_size, config.hidden_size, config.hidden_size)
    if config.arch == "concat-rnn":
        return ConcatRNNClassifier(vocab_size, num_classes, config.hidden_size)
    if config.task == "names":
        return NameClassifier(vocab_size, num_classes, config.cell, config.hidden_size,
                              config.num_layers, config.nonlinearity, config.dropout,
                              config.bidirectional, config.impl)
    if config.cell in MIN_CELLS:
        return ResidualLM(vocab_size, config.cell, config.hidden_size, config.num_layers, config.dropout)
    return CharLM(vocab_size, config.cell, config.hidden_size, config.num_layers,
                  config.nonlinearity, config.dropout, config.impl)


def save(ckpt: Checkpoint, path: str | os.PathLike) -> Path:
    """Write atomically: a temp file in the same directory, fsync, then rename over the target."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT,
        "config": ckpt.config.to_dict(),
        "vocab": list(ckpt.vocab.itos),
        "labels": list(ckpt.labels),
        "model": {k: v.detach().cpu() for k, v in ckpt.model_state.items()},
        "optimizer": _to_cpu(ckpt.optimizer_state),
        "step": int(ckpt.step),
        "epoch": int(ckpt.epoch),
        "best_val_loss": float(ckpt.best_val_loss),
        "extra": ckpt.extra,
    }
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(payload, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def load(path: str | os.PathLike) -> Checkpoint:
    """Read a checkpoint with `weights_only=True`: a file that holds Python objects is refused."""
    path = Path(path)
    if path.is_dir():
        candidate = RunDir(path).last
        if not candidate.exists():
            raise CheckpointError(f"{path}: a directory without {candidate.name}")
        path = candidate
    if not path.exists():
        raise CheckpointError(f"{path}: no such file")
    try:
        with warnings.catch_warnings():
            # torch.save writes pickle protocol 2, which is what our checkpoints hold; a file in
            # another protocol is someone else's pickle, which the weights-only unpickler reads as
            # strictly as any (anything but tensors and plain data is refused below), so torch's
            # warning that it "might not support" that protocol tells the user nothing to act on
            warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else "unsafe content"
        raise CheckpointError(
            f"{path}: refused, it holds Python objects that could run code when loaded ({reason[:160]})"
        ) from None
    except Exception as exc:  # a truncated or foreign file fails in many different ways
        detail = (str(exc).splitlines() or [type(exc).__name__])[0][:160]
        raise CheckpointError(f"{path}: not a readable checkpoint ({detail})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an RNN Workbench checkpoint (no '{FORMAT}' marker)")
    try:
        config = RunConfig.from_dict(payload["config"])
        return Checkpoint(
            config=config,
            vocab=Vocab(list(payload["vocab"])),
            model_state=payload["model"],
            optimizer_state=payload.get("optimizer"),
            labels=list(payload.get("labels", [])),
            step=int(payload.get("step", 0)),
            epoch=int(payload.get("epoch", 0)),
            best_val_loss=float(payload.get("best_val_loss", float("inf"))),
            extra=dict(payload.get("extra", {})),
        )
    except (KeyError, TypeError) as exc:
        raise CheckpointError(f"{path}: checkpoint is missing or has a malformed field ({exc})") from None


def _to_cpu(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
