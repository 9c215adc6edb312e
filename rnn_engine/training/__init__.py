"""Training: the `Trainer` loop, the two tasks, devices, precision choices, torchrun, and the run's service.

A `Trainer` owns its model, optimiser, data and device, reports only through events (to a sink
and to `runs/<id>/events.jsonl`), and honours `Controls` between batches, never in the middle of a
step. A NaN loss pauses the run with the last good checkpoint kept; running out of memory skips
the batch. Under torchrun, rank 0 decides and every rank does the same thing at the same step.
`service` is what a training process serves beside its run directory: the supervised control
endpoint and live.json.

    from rnn_engine.config import default_config
    from rnn_engine.training import Trainer
    summary = Trainer(default_config("charlm", data="my.txt", time_budget=60), sink=print).run()
"""

from __future__ import annotations

from .. import _lazy

_EXPORTS = {
    "Trainer": ".trainer",
    "apply_preset": ".presets",
    "describe_presets": ".presets",
    "resolve_device": ".devices",
    "available_devices": ".devices",
    "build_optimizer": ".optimizers",
}
__all__ = sorted(_EXPORTS)
__getattr__ = _lazy(__name__, _EXPORTS)
