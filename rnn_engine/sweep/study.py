"""A sweep's study: where it is stored, opening it from any process, and what its trials say.

A study lives in an Optuna storage: by default a journal file in the runs directory
(`runs/sweeps/<study>/study.journal`), which any number of sweep processes on this machine share;
given `--storage postgresql://...` (or mysql, sqlite), a database that sweeps on several machines
share. Each trial is an ordinary run; the trial's user attributes name its run directory and host.

Some trials of a study are bookkeeping rather than experiments, marked in their user attributes:
a draw that repeated a tried parameter set and was drawn again (`hidden`), a trial asked for after
the study had its total (`hidden`), and a failed trial whose worker stopped answering and that a
retry replaced (the retry's `retry_of` names it; it is shown with its reason). None of them
counts toward the study's total.
"""

from __future__ import annotations

import json
import math
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..rundir.liveness import read_object
from .storage import open_storage, shown_url

SWEEPS = "sweeps"  # under the runs directory: one directory per study run from this machine
JOURNAL = "study.journal"
DEFINITION = "sweep.json"
IMPORTANCE_TRIALS = 4  # complete trials before fANOVA's importances mean anything


def sweep_dir(runs_dir: str | Path, study: str) -> Path:
    return Path(runs_dir) / SWEEPS / study


def default_storage(runs_dir: str | Path, study: str) -> str:
    """The journal file a study is kept in when no --storage is given (as a path, not a URL)."""
    return str((sweep_dir(runs_dir, study) / JOURNAL).resolve())


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
    retry_of: int | None = None  # the trial this one runs again, its worker having stopped answering
    counted: bool = True  # False: replaced by its retry, so not one of the study's total

    @property
    def note(self) -> str:
        """What the table says beside the trial: why it failed, or whose retry it is."""
        if self.state == "failed" and self.reason:
            return self.reason + ("; retried" if not self.counted else "")
        return f"retry of trial {self.retry_of}" if self.retry_of is not None else ""

    def to_dict(self) -> dict[str, Any]:
        return {"number": self.number, "state": self.state, "value": self.value, "params": self.params,
                "run_id": self.run_id, "run_dir": self.run_dir, "seconds": self.seconds,
                "reason": self.reason, "retry_of": self.retry_of, "counted": self.counted}


def counted_trials(trials: list[Any]) -> list[Any]:
    """The study's experiments among its trials (Optuna FrozenTrials): asked for, not waiting in the
    queue, and neither a redrawn duplicate, a surplus ask nor a failed trial its retry replaced."""
    retried = {t.user_attrs.get("retry_of") for t in trials}
    return [t for t in trials if t.state.name != "WAITING" and not t.user_attrs.get("hidden")
            and not (t.state.name == "FAIL" and t.number in retried)]


def trial_rows(study: Any) -> list[TrialRow]:
    """Every trial of the study a person wants to see, by number (not the bookkeeping `hidden` ones)."""
    rows = []
    trials = study.get_trials(deepcopy=False)
    counted = {t.number for t in counted_trials(trials)}
    for t in trials:
        if t.user_attrs.get("hidden"):
            continue
        seconds = None
        if t.datetime_start is not None:
            end = t.datetime_complete
            if end is None:
                from datetime import datetime

                end = datetime.now()
            seconds = (end - t.datetime_start).total_seconds()
        value = t.value if t.value is not None and math.isfinite(t.value) else None
        retry = t.user_attrs.get("retry_of")
        rows.append(TrialRow(t.number, t.state.name.lower().replace("fail", "failed"), value, dict(t.params),
                             str(t.user_attrs.get("run_id", "")), str(t.user_attrs.get("run_dir", "")),
                             seconds, str(t.user_attrs.get("reason", "")),
                             retry if isinstance(retry, int) else None, t.number in counted))
    return sorted(rows, key=lambda r: r.number)


def summary(study: Any, storage: str) -> dict[str, Any]:
    """What `workbench sweep --json` prints: the counts by state and the best trial."""
    shown = trial_rows(study)
    rows = [r for r in shown if r.counted]
    counts = {k: sum(r.state == k for r in rows) for k in ("complete", "pruned", "failed", "running")}
    best = None
    try:
        t = study.best_trial
        best = {"number": t.number, "value": t.value, "params": dict(t.params),
                "run_dir": t.user_attrs.get("run_dir", "")}
    except ValueError:  # no trial has completed yet
        pass
    return {"study": study.study_name, "storage": shown_url(storage),
            "direction": study.direction.name.lower(), "trials": counts,
            "retried": sum(not r.counted for r in shown), "best": best}


def importances(study: Any) -> dict[str, float]:
    """How much each parameter mattered to the metric (Optuna's fANOVA), once there are enough trials."""
    import optuna

    complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    if len(complete) < IMPORTANCE_TRIALS:
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
