"""Table of past runs found under runs/, newest first."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from textual.widgets import DataTable


@dataclass
class RunInfo:
    """What the table shows about one run directory."""

    run_id: str
    path: Path
    task: str
    cell: str
    shape: str
    steps: int
    metric: str
    state: str


def _last_line(path: Path, max_bytes: int = 65536) -> str:
    # the summary is the last line; big event logs are read from the end only
    with path.open("rb") as fh:
        fh.seek(0, 2)
        size = fh.tell()
        fh.seek(max(0, size - max_bytes))
        lines = fh.read().decode("utf-8", errors="replace").strip().splitlines()
    return lines[-1] if lines else ""


def scan_runs(runs_dir: Path) -> list[RunInfo]:
    out = []
    if not runs_dir.is_dir():
        return out
    for d in sorted(runs_dir.iterdir(), reverse=True):
        cfg_file, events_file = d / "config.json", d / "events.jsonl"
        if not cfg_file.exists():
            continue
        try:
            cfg = json.loads(cfg_file.read_text())
            last = json.loads(_last_line(events_file)) if events_file.exists() else {}
        except (OSError, ValueError):
            continue
        summary = last.get("summary", {}) if last.get("event") == "RunFinished" else {}
        if "val_loss" in summary:
            metric = f"val {summary['val_loss']:.4f}"
        elif "test_accuracy" in summary:
            metric = f"acc {summary['test_accuracy']:.1%}"
        else:
            metric = "—"
        state = summary.get("reason", "interrupted" if last.get("event") != "RunFailed" else "failed")
        out.append(RunInfo(d.name, d, cfg.get("task", "?"), cfg.get("cell", "?"),
                           f"{cfg.get('num_layers', '?')}x{cfg.get('hidden_size', '?')}",
                           int(last.get("step", 0)), metric, state if (d / "last.pt").exists() or summary
                           else state + " (no checkpoint)"))
    return out


class RunsList(DataTable):
    """Past runs; Enter opens one, r resumes or forks it."""

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.add_columns("run", "task", "cell", "shape", "steps", "result", "state")

    def reload(self, runs_dir: Path) -> list[RunInfo]:
        self.clear()
        runs = scan_runs(runs_dir)
        for r in runs:
            self.add_row(r.run_id, r.task, r.cell, r.shape, str(r.steps), r.metric, r.state, key=str(r.path))
        return runs
