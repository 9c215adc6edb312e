"""A run's whole history as plain series: every logged step, every evaluation, the samples, the end."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..events import (
    EpochFinished,
    Evaluated,
    GradientsMeasured,
    RunFinished,
    RunStarted,
    Sampled,
    StepFinished,
    event_from_dict,
)
from ..rundir.layout import RunDir, RunDirError


@dataclass
class RunHistory:
    """What one run's files say, in the order it happened."""

    run_id: str
    path: Path
    config: dict[str, Any]
    steps: list[StepFinished] = field(default_factory=list)  # as logged: fast steps rolled up
    evaluations: list[Evaluated | EpochFinished] = field(default_factory=list)
    gradients: list[GradientsMeasured] = field(default_factory=list)
    samples: list[tuple[int, str, str]] = field(default_factory=list)  # (step, title, text)
    summary: dict[str, Any] = field(default_factory=dict)  # the RunFinished summary, if it ended so
    ended: str = ""  # "completed" or "stopped", or "" for a run that has not finished

    @property
    def task(self) -> str:
        return str(self.config.get("task", "charlm"))

    def final_metrics(self) -> dict[str, float]:
        """The run's figures to compare it by: best and last validation loss, accuracy for names."""
        losses = [e.val_loss for e in self.evaluations if math.isfinite(e.val_loss)]
        out: dict[str, float] = {}
        if losses:
            out["best_val_loss"] = min(losses)
            out["val_loss"] = losses[-1]
        for key in ("test_accuracy", "balanced_accuracy", "best_val_loss", "val_loss", "test_loss"):
            value = self.summary.get(key)
            if isinstance(value, (int, float)) and math.isfinite(value):
                out[key] = float(value)
        accuracies = [e.val_accuracy for e in self.evaluations if e.val_accuracy is not None]
        if accuracies and "test_accuracy" not in out:
            out["test_accuracy"] = accuracies[-1]
        return out


def read_history(run_dir: str | Path) -> RunHistory:
    """Every event of `run_dir`'s events.jsonl (a damaged line costs itself only) and its config."""
    run = RunDir(run_dir)
    try:
        config = run.settings_dict()
    except RunDirError:  # its events still export; the settings' columns stay empty
        config = {}
    history = RunHistory(run.path.name, run.path, config)
    try:
        lines = run.events.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        lines = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        event = event_from_dict(record) if isinstance(record, dict) else None
        if isinstance(event, StepFinished):
            history.steps.append(event)
        elif isinstance(event, (Evaluated, EpochFinished)):
            history.evaluations.append(event)
            if isinstance(event, EpochFinished) and event.sample:
                history.samples.append((event.step, f"epoch {event.epoch}", event.sample))
        elif isinstance(event, GradientsMeasured):
            history.gradients.append(event)
        elif isinstance(event, Sampled):
            history.samples.append((event.step, event.reason or "asked", event.text))
        elif isinstance(event, RunStarted) and not history.config:
            history.config = dict(event.config)
        elif isinstance(event, RunFinished):
            history.summary, history.ended = dict(event.summary), event.reason
    return history


def differing_settings(histories: list[RunHistory]) -> list[str]:
    """The config fields whose values are not the same in every run (all of them for a single run: none)."""
    if len(histories) < 2:
        return []
    keys = sorted({k for h in histories for k in h.config})
    return [k for k in keys if len({json.dumps(h.config.get(k), sort_keys=True) for h in histories}) > 1]
