"""`--resume RUN`: continue a run with the settings it had when it stopped, and say where each came from.

A checkpoint holds the run's settings as they were when it was saved, live changes included
(`ctl apply lr=...`, the app's `a`). A resumed run starts from those; a flag given on the
command line wins and is named as a change; the model's shape cannot change. The data is the
run's own unless `--corpus`/`--data` names other data.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import LIVE_FIELDS, RunConfig
from ..rundir.layout import RunDir, RunDirError
from .parsing import CliError

MODEL_FIELDS = ("cell", "hidden_size", "num_layers", "nonlinearity", "bidirectional", "arch", "dtype")


def checkpoint_of(spec: str, runs_dir: str) -> Path:
    """The checkpoint `--resume` names: a .pt file, or a run (directory, id, or latest) that has ended."""
    from ..rundir.liveness import run_state
    from ..rundir.runs import RunNotFound, resolve_model, run_name

    if spec.endswith(".pt") and not Path(spec).is_file():
        raise CliError(f"--resume {spec}: no such file")
    try:
        found = resolve_model(spec, runs_dir)
    except RunNotFound as exc:
        raise CliError(f"--resume: {exc}") from None
    if found.suffix == ".pt":
        return found
    state = run_state(found)
    if state.live:
        name = run_name(found)
        raise CliError(f"--resume {spec}: that run is {state.state} (pid {state.pid}); stop it first "
                       f"(workbench ctl {name} stop --wait), or fork its latest checkpoint with "
                       f"--resume {RunDir(found).last}")
    last = RunDir(found).last
    if not last.is_file():
        raise CliError(f"--resume {spec}: {found} has no checkpoint ({last.name}) to continue from")
    return last


@dataclass(frozen=True)
class Resumed:
    """The settings a resumed run starts from, the sentence that says where they came from, and the
    checkpoint itself (read once: the trainer starts from it)."""

    config: RunConfig
    origin: str
    checkpoint: Any


def _shown(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def resumed_settings(checkpoint: Path, task: str, given: dict[str, Any], data: str | None) -> Resumed:
    """The checkpoint's settings with the flags `given` (as typed) applied over them."""
    from ..errors import CheckpointError
    from ..model.checkpoint import load

    try:
        ck = load(checkpoint)
        saved = ck.config
    except CheckpointError as exc:
        raise CliError(f"--resume {checkpoint}: {exc}") from None
    if saved.task != task:
        other = "train-names --data DIR" if saved.task == "names" else "train --corpus FILE"
        raise CliError(f"--resume {checkpoint}: that is a {saved.task} run; resume it with workbench {other}")
    from .train import only_named_limits

    if given.get("preset"):
        raise CliError("--preset sets up a new run; a resumed run keeps its own settings")
    config = RunConfig.from_strings(given, only_named_limits(saved, given))
    for name in MODEL_FIELDS:
        if getattr(config, name) != getattr(saved, name):
            raise CliError(f"--{name.replace('_', '-')}: a resumed run keeps its model "
                           f"({name} {_shown(getattr(saved, name))}); start a new run to change it")
    if data:
        config = config.updated(data=data)
    parent = checkpoint.parent
    step = _step_of(parent)
    where = f"resumed from {parent.name}" + (f" at step {step}" if step is not None else "")
    parts = [f"{where}: its settings as they were when it stopped"]
    live = _changed_live(parent, saved)
    if live:
        parts.append("changed live there: " + ", ".join(live))
    changes = [f"{k} {_shown(getattr(saved, k))} → {_shown(getattr(config, k))}"
               for k in sorted(given) if getattr(saved, k) != getattr(config, k)]
    if data and Path(data).resolve() != Path(saved.data).resolve():
        changes.append(f"data {Path(saved.data).name} → {Path(data).name}")
    if changes:
        parts.append("given here: " + ", ".join(changes))
    return Resumed(config, "; ".join(parts), ck)


def _step_of(run_dir: Path) -> int | None:
    from ..rundir.eventlog import last_record

    last = last_record(RunDir(run_dir).events)
    step = last.get("step")
    return step if isinstance(step, int) else None


def _changed_live(run_dir: Path, saved: RunConfig) -> list[str]:
    """The live settings the run changed while it trained: its config.json against its checkpoint."""
    try:
        started = RunDir(run_dir).settings()
    except RunDirError:  # a checkpoint on its own, or a run whose settings are gone: nothing to compare
        return []
    return [f"{k} {_shown(getattr(started, k))} → {_shown(getattr(saved, k))}"
            for k in sorted(LIVE_FIELDS) if getattr(started, k) != getattr(saved, k)]
