"""RNN Workbench engine: hand-written recurrent cells, models, data, training and sampling in PyTorch."""

from __future__ import annotations

import importlib
from typing import Any

# Names resolve on first use, so a viewer that only reads run directories and speaks the run
# protocol (events, config, runs, client) never imports torch, which takes seconds and ~300 MB.
_EXPORTS = {
    "GRUCell": "cells", "LSTMCell": "cells", "RNNCell": "cells",
    "Checkpoint": "checkpoint", "CheckpointError": "errors",
    "ConfigError": "config", "RunConfig": "config",
    "Controls": "controls",
    "CharCorpus": "data", "DataError": "errors", "NamesData": "data", "Vocab": "data",
    "CharLM": "models", "NameClassifier": "models",
    "Recurrent": "recurrent",
    "DeviceError": "errors", "Trainer": "trainer",
}

__all__ = sorted(_EXPORTS)
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'rnn_engine' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)
