"""Compare runs: their loss curves overlaid on one time axis, and a table of their final figures."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import plotext as plt
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from ..curves import ChartSettings
from ..messages import CurvesRead
from ..widgets.figure import ChartKeys, build_figure, new_figure

COLOURS = ["cyan", "orange", "green", "magenta", "yellow", "blue", "red", "white"]


class CompareScreen(ChartKeys, Screen[None]):
    """Validation loss (lines) and train loss (dots) of each run against training seconds."""

    BINDINGS = [("escape", "app.pop_screen", "Back"), ("t", "train_curves", "Train loss on/off"),
                ("left_square_bracket", "smoothing(-1)", "Less smooth"),
                ("right_square_bracket", "smoothing(1)", "More smooth"), ("l", "log_scale", "Log scale")]
    DEFAULT_CSS = """
    CompareScreen #compare-chart { height: 1fr; min-height: 12; }
    CompareScreen #compare-table { height: auto; max-height: 12; }
    CompareScreen #compare-note { height: auto; color: $text-muted; padding: 0 1; }
    """

    def __init__(self, runs: list[Path], settings: ChartSettings | None = None) -> None:
        super().__init__()
        self.runs = runs
        self.chart = settings or ChartSettings()  # the app's: a change here holds for the session
        self.curves: list[Any] = []
        self.with_train = True

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("reading the runs' logs…", id="compare-chart")
            yield DataTable(id="compare-table", cursor_type="row")
            yield Static("x: training seconds, each run's steps spread over its own time (one name a step "
                         "and 64 a step share an axis this way) · lines: validation loss · dots: train loss "
                         "· t: train loss on/off · [ ]: smoothing · l: log scale · Esc: back",
                         id="compare-note")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("run", "model", "val loss", "accuracy", "balanced", "items/s", "time", "steps",
                          "parameters")
        self._load()

    @work(thread=True, exclusive=True, exit_on_error=False)
    def _load(self) -> None:
        from rnn_engine.rundir.comparison import read_curves

        self.post_message(CurvesRead([read_curves(path, points=100) for path in self.runs]))

    @on(CurvesRead)
    def _curves_read(self, message: CurvesRead) -> None:
        message.stop()
        self.curves = message.curves
        table = self.query_one(DataTable)
        for c, colour in zip(self.curves, COLOURS * 4):
            f = c.figures
            unit = "chars/s" if c.task == "charlm" else "names/s"
            table.add_row(Text(c.run_id, style=colour), c.label, _num(f["val_loss"], "{:.4f}"),
                          _num(f["accuracy"], "{:.1%}"), _num(f["balanced_accuracy"], "{:.1%}"),
                          _num(f["items_per_s"], "{:,.0f} " + unit), _num(f["seconds"], "{:.0f} s"),
                          f"{f['steps']:,}", _num(f["parameters"], "{:,}"))
        # the table's rows take room from the chart: draw once the layout has settled
        self.call_after_refresh(self._draw)

    def on_resize(self) -> None:
        self._draw()

    def action_train_curves(self) -> None:
        self.with_train = not self.with_train
        self._draw()

    def chart_changed(self) -> None:
        self._draw()

    def _draw(self) -> None:
        chart = self.query_one("#compare-chart", Static)
        width, height = chart.size.width, chart.size.height
        if not self.curves or width < 20 or height < 5:
            return
        built = self._build(width, height)
        extra = built.count("\n") + 1 - height
        if extra > 0:  # plotext's size leaves out a line or two of labels: make room for them
            built = self._build(width, height - extra)
        chart.update(Text.from_ansi(built))

    def _build(self, width: int, height: int) -> str:
        settings = self.chart
        new_figure(width, height, f"loss (nats) against training seconds · {settings.describe()}", "seconds")
        drawn = False
        for c, colour in zip(self.curves, COLOURS * 4):
            _, train = settings.curve(c.train)
            if self.with_train and train:
                plt.scatter([x for x, _ in train], [y for _, y in train], color=colour, marker="dot")
                drawn = True
            val = [(x, y) for x, y in c.val if y > 0 or not settings.log_scale]
            if val:
                plt.plot([x for x, _ in val], [y for _, y in val], color=colour, marker="braille",
                         label=f"{c.run_id} val")
                drawn = True
        return build_figure(settings.log_scale, drawn)


def _num(value: Any, fmt: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    return fmt.format(value)
