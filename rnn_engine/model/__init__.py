"""The trained things: the language model, the name classifier, the tutorials' models, checkpoints.

`CharLM` and `NameClassifier` are built from `nn` layers; `checkpoint` writes them atomically and
reads them with `torch.load(weights_only=True)`, so a file that carries code is refused, never run.
`load` turns a run (its id, directory, `latest`) or a .pt file into a `TrainedModel` that
generates text or classifies names.

    from rnn_engine.model import load
    print(load("latest").generate("ROMEO:", length=200))
"""

from __future__ import annotations

from .. import _lazy

_EXPORTS = {
    "CharLM": ".networks",
    "NameClassifier": ".networks",
    "Checkpoint": ".checkpoint",
    "build_model": ".checkpoint",
    "load_checkpoint": ".checkpoint:load",
    "save_checkpoint": ".checkpoint:save",
    "generate": ".sampling",
    "classify": ".sampling",
    "TrainedModel": ".trained",
    "load": ".trained",
}
__all__ = sorted(_EXPORTS)
__getattr__ = _lazy(__name__, _EXPORTS)
