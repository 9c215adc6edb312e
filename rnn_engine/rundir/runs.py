"""The runs directory: run ids, what each run is and how it stands, and finding a run by name."""

from __future__ import annotations

import math
import secrets
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .eventlog import last_record
from .layout import RunDir, RunDirError
from .liveness import endpoint_note, run_state


class RunNotFound(LookupError):
    """A RUN argument that names no run; the message says where it looked."""


def new_run_id(config: Any) -> str:
    model = config.cell if config.arch == "workbench" else config.arch
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{config.task}-{model}-{secrets.token_hex(2)}"


def run_name(run_dir: str | Path) -> str:
    """How to name a run on a command line: its id when it is under ./runs (the default), else its path."""
    run_dir = Path(run_dir)
    return run_dir.name if run_dir.parent.resolve() == Path("runs").resolve() else str(run_dir)


@dataclass
class RunInfo:
    """One run as `workbench runs` and the Runs tab show it."""

    run_id: str
    path: str
    task: str
    cell: str
    shape: str
    step: int
    best: str  # "val 1.3842" or "acc 78.8%", or "—"
    state: str  # starting, running, paused, finished, stopped, failed, dead
    pid: int | None = None
    started: float = 0.0
    reason: str = ""  # why it died or failed, or why a paused run paused
    cpu_percent: float | None = None
    rss_bytes: int | None = None
    gpu: dict | None = None
    items_per_s: float | None = None
    activity: str = ""
    world_size: int = 1  # ranks of a torchrun job; pid and resources are then rank 0's
    endpoint: str = ""  # a live run's control endpoint that failed: restarted, or down and how to stop it
    path_notice: str = ""  # a run whose layers fell back to a slow path (on a GPU), with why
    trial_note: str = ""  # a sweep trial's end as its study tells it (its worker stopped answering)

    @property
    def live(self) -> bool:
        return self.state in ("starting", "running", "paused")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _best(record: dict[str, Any], summary: dict[str, Any], task: str) -> str:
    if task == "names":
        acc = summary.get("test_accuracy", record.get("best_accuracy"))
        return f"acc {acc:.1%}" if isinstance(acc, (int, float)) else "—"
    loss = summary.get("best_val_loss", record.get("best_val_loss"))
    return f"val {loss:.4f}" if isinstance(loss, (int, float)) and math.isfinite(loss) else "—"


def run_info(path: Path) -> RunInfo | None:
    """What a run directory holds, or None when it holds no run (no config.json)."""
    run = RunDir(path)
    try:
        cfg = run.settings_dict()
    except RunDirError:
        return None  # not a run: a directory beside the runs (a sweep's, say), or one being made
    state = run_state(path)
    record = state.record
    last = {} if state.live else last_record(run.events)
    summary = last.get("summary", {}) if last.get("event") == "RunFinished" else {}
    step = record.get("step") if state.live else last.get("step", record.get("step", 0))
    task = cfg.get("task", "?")
    started = record.get("started")
    if started is None:
        try:
            started = run.config_file.stat().st_mtime
        except OSError:
            started = 0.0
    return RunInfo(
        run_id=path.name, path=str(path), task=task, cell=model_name(cfg),
        shape=f"{cfg.get('num_layers', '?')}x{cfg.get('hidden_size', '?')}",
        step=int(step or 0), best=_best(record, summary, task), state=state.state, pid=state.pid,
        started=float(started),
        reason=state.reason or (str(record.get("reason", "")) if state.state == "paused" else ""),
        cpu_percent=record.get("cpu_percent") if state.live else None,
        rss_bytes=record.get("rss_bytes") if state.live else None,
        gpu=record.get("gpu") if state.live else None,
        items_per_s=record.get("items_per_s") if state.live else None,
        activity=record.get("activity", "") if state.live else "",
        world_size=int(record.get("world_size") or 1),
        endpoint=endpoint_note(record) if state.live else "",
        path_notice=str(record.get("path_notice") or ""),
        trial_note=read_trial_note(path),
    )


def write_trial_note(run_dir: Path, note: str) -> None:
    """Leave what a sweep's study says of this run's trial where `workbench runs` reads it."""
    try:
        RunDir(run_dir).trial_note.write_text(note.strip() + "\n", encoding="utf-8")
    except OSError:
        pass  # the run directory is on another machine, or gone: the study keeps the reason


def read_trial_note(run_dir: Path) -> str:
    try:
        return RunDir(run_dir).trial_note.read_text(encoding="utf-8").strip()
    except OSError:
        return ""


def scan_runs(runs_dir: str | Path) -> list[RunInfo]:
    """Every run under `runs_dir`, newest first."""
    root = Path(runs_dir)
    if not root.is_dir():
        return []
    runs = [info for d in root.iterdir() if d.is_dir() and (info := run_info(d)) is not None]
    return sorted(runs, key=lambda r: (r.started, r.run_id), reverse=True)


def resolve_model(spec: str, runs_dir: str | Path = "runs") -> Path:
    """A .pt checkpoint as it is, or else a run directory as `resolve_run` finds it."""
    path = Path(spec)
    if path.suffix == ".pt" and path.is_file():
        return path
    return resolve_run(spec, runs_dir)


def resolve_run(spec: str, runs_dir: str | Path = "runs") -> Path:
    """A run directory from a path, a run id under `runs_dir`, or 'latest' (the newest run)."""
    if spec == "latest":
        runs = scan_runs(runs_dir)
        if not runs:
            raise RunNotFound(f"{runs_dir}: no runs yet")
        return Path(runs[0].path)
    for candidate in (Path(spec), Path(runs_dir) / spec):
        if RunDir(candidate).holds_run():
            return candidate
    matches = sorted(Path(runs_dir).glob(f"{spec}*")) if Path(runs_dir).is_dir() and "/" not in spec else []
    matches = [m for m in matches if RunDir(m).holds_run()]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise RunNotFound(f"{spec!r} matches {len(matches)} runs in {runs_dir}; give more of the id")
    raise RunNotFound(f"{spec}: no such run (looked for a run directory, and for a run id in {runs_dir})")


def model_name(cfg: dict) -> str:
    """The cell, a tutorial model's name, and a mark for a bidirectional or torch.nn one."""
    arch = cfg.get("arch", "workbench")
    name = cfg.get("cell", "?") if arch == "workbench" else arch
    bi = " bi" if cfg.get("bidirectional") else ""
    return name + bi + (" (torch)" if cfg.get("impl") == "torch" else "")


# -- workbench runs -------------------------------------------------------------------------------
def _size(n: float | None) -> str:
    if n is None:
        return "—"
    for unit in ("B", "K", "M", "G", "T"):
        if n < 1024 or unit == "T":
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.1f}{unit}"
        n /= 1024
    return "—"


def describe_resources(cpu_percent: float | None, rss_bytes: int | None, gpu: dict | None) -> str:
    """'cpu 190% · mem 1.2G · gpu 3.1G/80.0G 87%' (CPU % of one core, as top shows it), or ''."""
    if cpu_percent is None:
        return ""
    parts = [f"cpu {cpu_percent:.0f}%", f"mem {_size(rss_bytes)}"]
    if gpu:
        util = f" {gpu['utilization']}%" if "utilization" in gpu else ""
        parts.append(f"gpu {_size(gpu.get('memory_used'))}/{_size(gpu.get('memory_total'))}{util}")
    return " · ".join(parts)


def resources(info: RunInfo) -> str:
    """What a live run uses, for `workbench runs` and the Runs tab; '' for one that is not live."""
    return describe_resources(info.cpu_percent, info.rss_bytes, info.gpu) if info.live else ""
