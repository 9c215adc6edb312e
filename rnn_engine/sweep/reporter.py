"""Inside a trial's own run: its evaluations reported to the study, and a stop when the pruner says so."""

from __future__ import annotations

import math
import sys
from typing import Any

from ..control.controls import Controls
from ..events import EpochFinished, Evaluated, Event
from .study import load


class TrialReporter:
    """A sink for the trial's events: each evaluation becomes an intermediate value of its trial.

    The step of an intermediate value is the evaluation's count (1, 2, ...): every trial
    evaluates on the same cadence of seconds, so the k-th evaluations of two trials are the
    same amount of training apart, which is what the pruner compares. When the pruner gives up
    on the trial, the run stops at the next batch, saves, and ends as "pruned".
    """

    def __init__(self, storage: str, study: str, number: int, metric: str, controls: Controls,
                 pruner: str = "median") -> None:
        import optuna

        self.study = load(storage, study, pruner)
        # Optuna's Trial is made from the trial's id; its number is what the sweep hands out
        trial_id = self.study._storage.get_trial_id_from_study_id_trial_number(self.study._study_id, number)
        self.trial = optuna.trial.Trial(self.study, trial_id)
        self.metric = metric
        self.controls = controls
        self.reported = 0
        self.broken = ""  # why reports stopped: the run goes on without its study

    def __call__(self, event: Event) -> None:
        if not isinstance(event, (Evaluated, EpochFinished)) or getattr(event, "full", False):
            return
        value = event.val_accuracy if self.metric == "accuracy" else event.val_loss
        if value is None or not math.isfinite(value) or self.broken:
            return
        self.reported += 1
        try:
            self.trial.report(float(value), self.reported)
            prune = self.trial.should_prune()
        except Exception as exc:  # noqa: BLE001 - the storage is gone or the trial was closed: train on
            self.broken = f"{type(exc).__name__}: {exc}"
            print(f"workbench: trial {self.trial.number}: no more reports to its study ({self.broken})",
                  file=sys.stderr, flush=True)
            return
        if prune:
            self.controls.stop("pruned")


def metric_value(summary: dict[str, Any], metric: str) -> float | None:
    """A finished trial's value from its run's summary: best validation loss, or test accuracy."""
    key = "test_accuracy" if metric == "accuracy" else ("best_val_loss" if "best_val_loss" in summary
                                                        else "test_loss")
    value = summary.get(key)
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None
