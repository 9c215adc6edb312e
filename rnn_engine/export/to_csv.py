"""Many runs as one CSV table: a row per logged step or evaluation, for a notebook or a paper."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

from ..events import EpochFinished
from .history import RunHistory, differing_settings

COLUMNS = ["run_id", "kind", "step", "epoch", "elapsed_s", "train_loss", "lr", "grad_norm", "items_per_s",
           "val_loss", "val_accuracy", "balanced_accuracy"]


def _cell(value: Any) -> Any:
    if isinstance(value, float):
        return "" if not math.isfinite(value) else repr(value)
    return "" if value is None else value


def write_csv(histories: list[RunHistory], path: str | Path) -> int:
    """Write the table; returns the number of data rows.

    The settings that differ between the runs are extra columns, named `config.<field>` (`lr` is
    the learning rate the step used, `config.lr` the run's setting). `kind` is "step" for a logged
    training step (`train_loss` is the mean over the steps the record stands for) and "epoch" or
    "eval" for an evaluation (`val_*` filled).
    """
    settings = differing_settings(histories)
    rows: list[list[Any]] = []
    for h in histories:
        fixed = [h.config.get(k) for k in settings]
        for s in h.steps:
            rows.append([h.run_id, *fixed, "step", s.step, s.epoch, s.elapsed, s.loss, s.lr, s.grad_norm,
                         s.items_per_s, None, None, None])
        pace = {s.step: s.elapsed for s in h.steps}
        for e in h.evaluations:
            kind = "epoch" if isinstance(e, EpochFinished) else "eval"
            rows.append([h.run_id, *fixed, kind, e.step, e.epoch, pace.get(e.step), None, None, None, None,
                         e.val_loss, e.val_accuracy, e.balanced_accuracy])
    order = {"step": 0, "eval": 1, "epoch": 1}
    rows.sort(key=lambda r: (histories.index(next(h for h in histories if h.run_id == r[0])),
                             r[len(settings) + 2], order[r[len(settings) + 1]]))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow([COLUMNS[0], *(f"config.{k}" for k in settings), *COLUMNS[1:]])
        for row in rows:
            writer.writerow([_cell(v) for v in row])
    return len(rows)
