"""Hyperparameter sweeps over runs, with Optuna: a search space, trials that are runs, pruning.

A sweep process (`coordinator`) asks its study for trials and starts each as an ordinary run, a
process with its own directory that attach, runs and ctl understand; the run reports each
evaluation to the study (`reporter`) and stops, saving, when the pruner gives up on it. The study
lives in a journal file or a database (`study`), so several sweep processes, on one machine or
many, share it. The space is a TOML `[space]` table checked field by field (`space`).
"""

from __future__ import annotations

from .. import _lazy

_EXPORTS = {
    "Space": ".space", "SpaceError": ".space", "read_space": ".space", "parse_space": ".space",
    "Sweep": ".coordinator", "SweepSettings": ".coordinator", "TrialReporter": ".reporter",
    "trial_rows": ".study", "summary": ".study", "importances": ".study", "load": ".study",
}
__all__ = sorted(_EXPORTS)
__getattr__ = _lazy(__name__, _EXPORTS)
