"""RNN Workbench's engine: recurrent networks written by hand in PyTorch, and what it takes to train them.

The names below are the engine's public API, resolved on first use so that importing the package
costs nothing until torch is needed:

    import rnn_engine as rnn
    lm = rnn.load("latest")                                   # a run id, run directory, 'latest' or .pt
    print(lm.generate("ROMEO:", length=200, temperature=0.7))
    layer = rnn.GRU(input_size=16, hidden_size=32)            # takes what torch.nn.GRU takes

The map, bottom up; a package imports only from those below it (import-linter checks this):

    config, events, errors   the shared vocabulary: settings, what a run reports, what can go wrong
    data/      corpora and names directories: reading, splits, vocabularies, batches
    nn/        what the network computes: cells, `Recurrent`, torch.nn behind the same interface,
               the fused CPU kernels, bf16 precision
    rundir/    runs/<id>/ on disk: ids, the event log, liveness, launching, comparing (no torch)
    control/   steering a live run: protocol, endpoint, client, the controls queue (no torch)
    model/     CharLM, NameClassifier, the tutorials' models, checkpoints, sampling, `load`
    analysis/  gradient diagnostics, units and gates over a text, the torch.nn check
    training/  Trainer, the tasks, devices, optimisers, torchrun, presets, the run's service
    cli/       the `workbench` commands; each only parses and prints

config, events, errors, rundir and control import no torch: a viewer (`workbench runs`, `ctl`,
`attach`, the TUI) starts in a fraction of a second.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

__version__ = "0.1.0"


def _lazy(package: str, exports: dict[str, str]) -> Callable[[str], Any]:
    """A module `__getattr__` that imports `exports[name]` (".module" or ".module:attribute") on first use."""

    def __getattr__(name: str) -> Any:
        where = exports.get(name)
        if where is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, _, attribute = where.partition(":")
        return getattr(importlib.import_module(module, package), attribute or name)

    return __getattr__


_EXPORTS = {
    # the shared vocabulary
    "RunConfig": ".config", "ConfigError": ".config", "default_config": ".config",
    "Event": ".events", "RunStarted": ".events", "StepFinished": ".events", "EpochFinished": ".events",
    "Evaluated": ".events", "Sampled": ".events", "RunPaused": ".events", "RunFinished": ".events",
    "RunFailed": ".events", "CheckpointSaved": ".events", "GradientsMeasured": ".events",
    "DataError": ".errors", "CheckpointError": ".errors", "DeviceError": ".errors",
    "DistributedError": ".errors",
    # data and layers
    "CharCorpus": ".data.text", "NamesData": ".data.names", "Vocab": ".data.vocab", "read_text": ".data.text",
    "Recurrent": ".nn.recurrent", "RNN": ".nn.recurrent", "GRU": ".nn.recurrent", "LSTM": ".nn.recurrent",
    "RNNCell": ".nn.cells", "GRUCell": ".nn.cells", "LSTMCell": ".nn.cells",
    # models, checkpoints, using them
    "CharLM": ".model.networks", "NameClassifier": ".model.networks", "Checkpoint": ".model.checkpoint",
    "load_checkpoint": ".model.checkpoint:load", "generate": ".model.sampling", "classify": ".model.sampling",
    "TrainedModel": ".model.trained", "load": ".model.trained",
    # training, and runs as processes
    "Trainer": ".training.trainer", "Controls": ".control.controls", "RunClient": ".control.client",
    "RunUnavailable": ".control.client", "scan_runs": ".rundir.runs", "resolve_run": ".rundir.runs",
    "run_state": ".rundir.liveness",
}

__all__ = sorted(_EXPORTS)
__getattr__ = _lazy(__name__, _EXPORTS)
