"""Several runs side by side: their loss curves on one time axis and their final figures (no torch).

The curves come from each run's events.jsonl. Step records carry no time in the fast reader, so a
step's time is placed by the run's average pace (its newest step's elapsed time over its step
count): curves of models that step at very different rates (one name per step against 64) then
share an axis that means something, training seconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..events import EpochFinished, Evaluated, RunFinished, RunStarted
from .eventlog import EventReader
from .layout import RunDir
from .runs import model_name


@dataclass
class RunCurves:
    """One run's curves against training seconds, and the figures of its comparison table."""

    run_id: str
    label: str  # model and task in a few words
    task: str
    train: list[tuple[float, float]] = field(default_factory=list)
    val: list[tuple[float, float]] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)


def read_curves(run_dir: str | Path, points: int = 300) -> RunCurves:
    """The run's train loss (averaged into about `points` points) and validation loss over time."""
    run_dir = Path(run_dir)
    batch = EventReader(RunDir(run_dir).events).read()
    started = next((e for e in batch.events if isinstance(e, RunStarted)), None)
    config = started.config if started is not None else {}
    task = config.get("task", "charlm")
    last = batch.last_step
    pace = last.elapsed / last.step if last is not None and last.step > 0 else 0.0
    steps = [(s, v) for s, v in batch.steps if math.isfinite(v)]
    size = max(1, len(steps) // points)
    train = [(steps[i][0] * pace, sum(v for _, v in steps[i:i + size]) / len(steps[i:i + size]))
             for i in range(0, len(steps), size)]
    val, metrics = [], {}
    for e in batch.events:
        if isinstance(e, (Evaluated, EpochFinished)) and math.isfinite(e.val_loss):
            val.append((e.step * pace, e.val_loss))
            metrics = {"val_loss": e.val_loss, "accuracy": e.val_accuracy,
                       "balanced_accuracy": e.balanced_accuracy}
    finished = next((e for e in reversed(batch.events) if isinstance(e, RunFinished)), None)
    summary = finished.summary if finished is not None else {}
    rate = last.items_per_s if last is not None else None
    figures = {
        "val_loss": summary.get("val_loss", summary.get("test_loss", metrics.get("val_loss"))),
        "accuracy": summary.get("test_accuracy", metrics.get("accuracy")),
        "balanced_accuracy": summary.get("balanced_accuracy", metrics.get("balanced_accuracy")),
        "items_per_s": summary.get("chars_per_s", summary.get("names_per_s", rate)),
        "seconds": summary.get("elapsed", last.elapsed if last is not None else None),
        "parameters": started.parameters if started is not None else None,
        "steps": last.step if last is not None else 0,
    }
    return RunCurves(run_dir.name, _label(config), task, train, val, figures)


def _label(config: dict[str, Any]) -> str:
    shape = f"{config.get('num_layers', '?')}x{config.get('hidden_size', '?')}"
    return config.get("preset") or f"{model_name(config)} {shape}"
