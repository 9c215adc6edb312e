"""The sweeps of a runs directory and how each stands, from their files alone (no Optuna, no torch)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..rundir.liveness import read_record, run_state
from .study import SWEEPS, read_definition


@dataclass(frozen=True)
class SweepInfo:
    """One sweep process's directory: its study, where the study is stored, and whether it runs."""

    study: str
    path: Path
    storage: str
    metric: str
    state: str  # running, finished, stopped, failed, dead (as a run's)
    pid: int | None
    started: float
    definition: dict[str, Any]

    @property
    def live(self) -> bool:
        return self.state in ("starting", "running", "paused")


def sweep_info(directory: Path) -> SweepInfo | None:
    definition = read_definition(directory)
    if not definition:
        return None
    state = run_state(directory)
    record = read_record(directory)
    return SweepInfo(str(definition.get("study", directory.name)), directory,
                     str(definition.get("storage", "")), str(definition.get("metric", "val_loss")),
                     state.state, record.get("pid") if state.live else None,
                     float(record.get("started", 0.0)), definition)


def scan_sweeps(runs_dir: str | Path) -> list[SweepInfo]:
    """Every sweep started from this runs directory, running ones first, then the newest."""
    root = Path(runs_dir) / SWEEPS
    if not root.is_dir():
        return []
    found = [info for d in root.iterdir() if d.is_dir() and (info := sweep_info(d)) is not None]
    return sorted(found, key=lambda s: (not s.live, -s.started))
