"""A sweep's study: where it is stored, opening it from any process, and what its trials say.

A study lives in an Optuna storage: by default a journal file in the runs directory
(`runs/sweeps/<study>/study.journal`), which any number of sweep processes on this machine share;
given `--storage postgresql://...` (or mysql, sqlite), a database that sweeps on several machines
share. Each trial is an ordinary run; the trial's user attributes name its run directory and host.
"""

from __future__ import annotations

import json
import math
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..rundir.liveness import read_object

SWEEPS = "sweeps"  # under the runs directory: one directory per study run from this machine
JOURNAL = "study.journal"
DEFINITION = "sweep.json"


def sweep_dir(runs_dir: str | Path, study: str) -> Path:
    return Path(runs_dir) / SWEEPS / study


def default_storage(runs_dir: str | Path, study: str) -> str:
    """The journal file a study is kept in when no --storage is given (as a path, not a URL)."""
    return str((sweep_dir(runs_dir, study) / JOURNAL).resolve())


def open_storage(storage: str) -> Any:
    """An Optuna storage for a database URL, or a journal file for a plain path."""
    import optuna

    if "://" in storage:
        return storage  # optuna.create_study opens RDB URLs itself (postgresql, mysql, sqlite)
    Path(storage).parent.mkdir(parents=True, exist_ok=True)
    backend = optuna.storages.journal.JournalFileBackend(storage)
    return optuna.storages.JournalStorage(backend)


def quiet_optuna() -> None:
    """Optuna logs every trial at INFO; a sweep says what matters itself."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)


PRUNERS = ("median", "hyperband", "none")


def make_pruner(name: str) -> Any:
    """The pruner a sweep asks for. A study keeps no pruner: the sweep and each of its trials make
    the same one, since the trial's process is where `should_prune` is decided."""
    import optuna

    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, reduction_factor=3)
    if name == "none":
        return optuna.pruners.NopPruner()
    if name != "median":
        raise ValueError(f"pruner must be one of {', '.join(PRUNERS)}, not {name!r}")
    # never on a trial's first evaluation, and only once two trials have shown what is usual
    return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1)


def load(storage: str, study: str, pruner: str = "median") -> Any:
    """An existing study, with the sweep's pruner; KeyError when the storage holds none by that name."""
    import optuna

    quiet_optuna()
    return optuna.load_study(study_name=study, storage=open_storage(storage), pruner=make_pruner(pruner))


@dataclass
class TrialRow:
    """One trial as the sweep's table shows it."""

    number: int
    state: str  # running, complete, pruned, failed, waiting
    value: float | None
    params: dict[str, Any]
    run_id: str
    run_dir: str
    seconds: float | None
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"number": self.number, "state": self.state, "value": self.value, "params": self.params,
                "run_id": self.run_id, "run_dir": self.run_dir, "seconds": self.seconds,
                "reason": self.reason}


def trial_rows(study: Any) -> list[TrialRow]:
    """Every trial of the study, by number."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        seconds = None
        if t.datetime_start is not None:
            end = t.datetime_complete
            if end is None:
                from datetime import datetime

                end = datetime.now()
            seconds = (end - t.datetime_start).total_seconds()
        value = t.value if t.value is not None and math.isfinite(t.value) else None
        rows.append(TrialRow(t.number, t.state.name.lower().replace("fail", "failed"), value, dict(t.params),
                             str(t.user_attrs.get("run_id", "")), str(t.user_attrs.get("run_dir", "")),
                             seconds, str(t.user_attrs.get("reason", ""))))
    return sorted(rows, key=lambda r: r.number)


def summary(study: Any, storage: str) -> dict[str, Any]:
    """What `workbench sweep --json` prints: the counts by state and the best trial."""
    rows = trial_rows(study)
    counts = {k: sum(r.state == k for r in rows) for k in ("complete", "pruned", "failed", "running")}
    best = None
    try:
        t = study.best_trial
        best = {"number": t.number, "value": t.value, "params": dict(t.params),
                "run_dir": t.user_attrs.get("run_dir", "")}
    except ValueError:  # no trial has completed yet
        pass
    return {"study": study.study_name, "storage": storage, "direction": study.direction.name.lower(),
            "trials": counts, "best": best}


def importances(study: Any) -> dict[str, float]:
    """How much each parameter mattered to the metric (Optuna's fANOVA), once there are enough trials."""
    import optuna

    complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    if len(complete) < 4:
        return {}
    try:
        return dict(optuna.importance.get_param_importances(study))
    except (RuntimeError, ValueError):  # every trial with one value of each parameter, say
        return {}


def write_definition(directory: Path, definition: dict[str, Any]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f".{DEFINITION}.tmp"
    tmp.write_text(json.dumps(definition, indent=2) + "\n", encoding="utf-8")
    tmp.replace(directory / DEFINITION)


def read_definition(directory: Path) -> dict[str, Any]:
    return read_object(directory / DEFINITION)


def this_host() -> str:
    return socket.gethostname()
