"""A sweep's trials, kept current: the table, a parameter against the metric, what mattered, and stop."""

from __future__ import annotations

import math
import os
import signal
from pathlib import Path
from typing import Any

import plotext as plt
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from rnn_engine.rundir.layout import RunDir
from rnn_engine.sweep.listing import SweepInfo, sweep_info
from rnn_engine.sweep.study import IMPORTANCE_TRIALS

from ..messages import SweepRead, SweepUnreadable
from ..widgets.figure import build_figure, new_figure

REFRESH = 2.0  # seconds between reads of the study
STATE_STYLES = {"complete": "green", "pruned": "yellow", "failed": "red", "running": "cyan"}


class SweepScreen(Screen[Path | None]):
    """Returns the run directory of the trial chosen with Enter, or None on Esc."""

    BINDINGS = [Binding("escape", "close", "Back"), Binding("enter", "open_trial", "Open the trial's run"),
                Binding("m", "sort", "Sort by metric"), Binding("p", "next_param", "Next parameter"),
                Binding("x", "stop_sweep", "Stop the sweep")]
    DEFAULT_CSS = """
    SweepScreen #sweep-head { height: auto; padding: 0 1; }
    SweepScreen #sweep-table { height: 1fr; min-height: 5; }
    SweepScreen #sweep-chart { height: 12; }
    SweepScreen #sweep-importance { height: auto; padding: 0 1; color: $text-muted; }
    """

    def __init__(self, sweep: SweepInfo) -> None:
        super().__init__()
        self.sweep = sweep
        self.rows: list[Any] = []
        self.importances: dict[str, float] = {}
        self.params: list[str] = []
        self.param = 0
        self.sort_by_metric = False
        self.stops = 0
        self._shown: list[tuple[Any, ...]] = []
        self._leaving = False

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("reading the study…", id="sweep-head")
            yield DataTable(id="sweep-table", cursor_type="row")
            yield Static("", id="sweep-chart")
            yield Static("", id="sweep-importance")
        yield Footer()

    def on_mount(self) -> None:
        self._read()
        self.set_interval(REFRESH, self._read)

    def action_close(self) -> None:
        self._leaving = True
        self.dismiss(None)

    # -- reading the study (a worker thread: Optuna and its storage stay off the UI's loop) -----
    @work(thread=True, exclusive=True, exit_on_error=False, group="sweep")
    def _read(self) -> None:
        from rnn_engine.sweep.study import importances, load, trial_rows

        info = sweep_info(self.sweep.path) or self.sweep
        try:
            study = load(info.storage, info.study)
            rows, weights = trial_rows(study), importances(study)
        except (KeyError, OSError, RuntimeError, ValueError) as exc:
            self.post_message(SweepUnreadable(f"cannot read study {info.study}: {exc}"))
            return
        self.post_message(SweepRead(info, rows, weights))

    @on(SweepUnreadable)
    def _unreadable(self, message: SweepUnreadable) -> None:
        message.stop()
        if not self._leaving and self.is_attached:
            self.query_one("#sweep-head", Static).update(Text(message.reason, style="red"))

    @on(SweepRead)
    def _sweep_read(self, message: SweepRead) -> None:
        message.stop()
        if self._leaving or not self.is_attached:
            return
        self.sweep, self.rows, self.importances = message.info, message.rows, message.importances
        self.params = sorted({k for r in self.rows for k in r.params})
        self._show()

    # -- drawing ----------------------------------------------------------------------------------
    def _ordered(self) -> list[Any]:
        if not self.sort_by_metric:
            return self.rows
        maximise = self.sweep.metric == "accuracy"
        done = [r for r in self.rows if r.value is not None]
        done.sort(key=lambda r: r.value, reverse=maximise)
        return done + [r for r in self.rows if r.value is None]

    def _show(self) -> None:
        info = self.sweep
        states = ("complete", "pruned", "failed", "running")
        counted = [r for r in self.rows if r.counted]  # not the trials a retry replaced
        counts = {s: sum(r.state == s for r in counted) for s in states}
        goal = info.definition.get("trials", "?")
        who = f"pid {info.pid}" if info.pid else "no sweep process"
        done = [r for r in self.rows if r.value is not None]
        best = ""
        if done:
            pick = max if info.metric == "accuracy" else min
            b = pick(done, key=lambda r: r.value)
            best = f" · best: trial {b.number}, {info.metric} {_num(b.value, info.metric)}"
        stop = " · x stops the sweep" if info.live else ""
        head = (f"[b]sweep {info.study}[/] · {info.state} ({who}) · {len(counted)} of {goal} trials: "
                f"{counts['complete']} complete, {counts['pruned']} pruned, {counts['failed']} failed, "
                f"{counts['running']} running{best}\n"
                f"[dim]{info.metric} ({'higher' if info.metric == 'accuracy' else 'lower'} is better) · "
                f"Enter opens a trial's run · m sorts by {info.metric} · p next parameter{stop}"
                f" · Esc back[/]")
        self.refresh_bindings()  # x is offered while the sweep runs
        self.query_one("#sweep-head", Static).update(head)
        table = self.query_one(DataTable)
        columns = ("#", "state", info.metric, "time", *self.params, "run", "note")
        rows = [(str(r.number), Text(r.state, style=STATE_STYLES.get(r.state, "")),
                 _num(r.value, info.metric), _duration(r.seconds),
                 *(_short(r.params.get(p)) for p in self.params), r.run_id, Text(r.note, style="dim"))
                for r in self._ordered()]
        key = (columns, tuple(tuple(str(c) for c in row) for row in rows))
        if key != self._shown:
            cursor = table.cursor_row
            self._shown = key
            table.clear(columns=True)
            table.add_columns(*columns)
            for r, row in zip(self._ordered(), rows):
                table.add_row(*row, key=r.run_dir or f"trial-{r.number}")
            if rows:
                table.move_cursor(row=min(cursor, len(rows) - 1), animate=False)
        self._chart()
        if self.importances:
            ranked = sorted(self.importances.items(), key=lambda kv: -kv[1])
            shown = " · ".join(f"{k} {v:.2f}" for k, v in ranked)
            self.query_one("#sweep-importance", Static).update(f"what mattered (Optuna's fANOVA): {shown}")
        else:
            goal = self.sweep.definition.get("trials")
            complete = sum(r.state == "complete" for r in self.rows)
            if isinstance(goal, int) and goal < IMPORTANCE_TRIALS:
                said = (f"what mattered: Optuna's fANOVA needs {IMPORTANCE_TRIALS} complete trials, and this "
                        f"sweep has {goal} in all")
            else:
                said = (f"what mattered: shown once {IMPORTANCE_TRIALS} trials have completed ({complete} so "
                        "far)")
            self.query_one("#sweep-importance", Static).update(said)

    def _chart(self) -> None:
        chart = self.query_one("#sweep-chart", Static)
        width, height = chart.size.width, chart.size.height
        done = [r for r in self.rows if r.value is not None]
        if width < 20 or height < 5 or not self.params:
            return
        name = self.params[self.param % len(self.params)]
        points = [(r.params.get(name), r.value) for r in done if r.params.get(name) is not None]
        new_figure(width, height, f"{self.sweep.metric} against {name} · p: next parameter")
        if points:
            values = [p for p, _ in points]
            if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
                xs = [float(v) for v in values]
                if min(xs) > 0 and max(xs) / min(xs) > 20:  # a log range: its exponent is what varies
                    plt.xscale("log")
                plt.scatter(xs, [v for _, v in points], marker="dot")
            else:
                labels = sorted({str(v) for v in values})
                plt.scatter([labels.index(str(v)) + 1 for v in values], [v for _, v in points], marker="dot")
                plt.xticks(list(range(1, len(labels) + 1)), labels)
        chart.update(Text.from_ansi(build_figure()))

    def on_resize(self) -> None:
        self._chart()

    # -- keys -----------------------------------------------------------------------------------------
    def action_sort(self) -> None:
        self.sort_by_metric = not self.sort_by_metric
        self._show()

    def action_next_param(self) -> None:
        if self.params:
            self.param = (self.param + 1) % len(self.params)
            self._chart()

    @on(DataTable.RowSelected)
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        # not from inside the table's own message: dismissing waits for this screen's handlers to end
        self.call_later(self.action_open_trial)

    def action_open_trial(self) -> None:
        table = self.query_one(DataTable)
        if table.row_count == 0:
            return
        key = str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)
        if key.startswith("trial-") or not RunDir(key).holds_run():
            self.app.notify("That trial has no run (it was not started).", severity="warning")
            return
        self._leaving = True
        self.dismiss(Path(key))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "stop_sweep":
            return self.sweep.live  # a finished sweep has nothing to stop
        return True

    def action_stop_sweep(self) -> None:
        info = self.sweep
        if not info.live or not info.pid:
            self.app.notify(f"Sweep {info.study} is {info.state}: there is nothing to stop.")
            return
        try:
            os.kill(info.pid, signal.SIGTERM)
        except ProcessLookupError:
            self.app.notify(f"Sweep {info.study} has just ended.")
            return
        except PermissionError:
            self.app.notify(f"Sweep {info.study} is another user's.", severity="error")
            return
        self.stops += 1
        self.app.notify("The sweep starts no more trials; the running ones finish. x again stops them too."
                        if self.stops == 1 else "The running trials stop at their next batch and save.")


def _num(value: float | None, metric: str = "val_loss") -> str:
    """A trial's metric as every other view shows it: a loss to 4 places, an accuracy in percent."""
    if value is None or not math.isfinite(value):
        return "—"
    return f"{value:.1%}" if metric == "accuracy" else f"{value:.4f}"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    s = int(seconds)
    return f"{s // 60}:{s % 60:02d}"


def _short(value: Any) -> str:
    if value is None:
        return ""
    return f"{value:.3g}" if isinstance(value, float) else str(value)
