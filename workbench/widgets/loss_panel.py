"""Loss panel: train/validation sparklines that stay readable, and a plotext chart of the whole run."""

from __future__ import annotations

import math
import time

import plotext as plt
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widget import Widget
from textual.widgets import Label, Static

from ..curves import ChartSettings
from .bars import Bars
from .figure import build_figure, new_figure, whole_ticks


class LossPanel(Vertical):
    """Training loss (recent window) and validation loss sparklines, plus the full-run chart."""

    DEFAULT_CSS = """
    LossPanel { height: auto; }
    LossPanel .spark-row { height: 3; }
    LossPanel .spark-label { width: 22; height: 3; content-align: left middle; }
    LossPanel Bars { height: 3; width: 1fr; }
    LossPanel LossChart { height: 14; width: 1fr; }
    """

    WINDOW = 400  # recent steps in the train sparkline
    PLOT_EVERY = 10.0  # seconds between chart redraws: the chart shows the trend, the labels the numbers

    def __init__(self, settings: ChartSettings | None = None, between: Widget | None = None, **kw) -> None:
        super().__init__(**kw)
        self.between = between  # shown between the sparklines and the chart (the compact layout's strip)
        self.settings = settings or ChartSettings()
        self.train_steps: list[int] = []
        self.train_losses: list[float] = []
        self.val_points: list[tuple[int, float]] = []
        self._plotted = 0.0

    def compose(self) -> ComposeResult:
        with Horizontal(classes="spark-row"):
            yield Label("train loss  —", id="train-label", classes="spark-label")
            yield Bars(id="train-spark")
        with Horizontal(classes="spark-row"):
            yield Label("val loss    —", id="val-label", classes="spark-label")
            yield Bars(id="val-spark")
        if self.between is not None:
            yield self.between
        yield LossChart(self.settings, id="loss-plot")
        yield Static("", id="loss-note")

    def clear_curves(self) -> None:
        self.train_steps.clear()
        self.train_losses.clear()
        self.val_points.clear()
        self.redraw(force_plot=True)

    def add_steps(self, steps: list[tuple[int, float]]) -> None:
        for step, loss in steps:
            self.train_steps.append(step)
            self.train_losses.append(loss)

    def add_val(self, step: int, loss: float) -> None:
        if math.isfinite(loss):
            self.val_points.append((step, loss))

    def redraw(self, force_plot: bool = False) -> None:
        recent = self.train_losses[-self.WINDOW:]
        self.query_one("#train-spark", Bars).show(recent)
        self.query_one("#val-spark", Bars).show([v for _, v in self.val_points])
        last = next((v for v in reversed(recent) if math.isfinite(v)), None)
        # fixed-size widgets: skipping the layout pass keeps redraws cheap while training
        self.query_one("#train-label", Label).update(
            f"train loss {last:7.4f}" if last is not None else "train loss  —", layout=False)
        val = self.val_points[-1][1] if self.val_points else None
        self.query_one("#val-label", Label).update(
            f"val loss   {val:7.4f}" if val is not None else "val loss    —", layout=False)
        now = time.monotonic()
        if force_plot or now - self._plotted >= self.PLOT_EVERY:
            self._plotted = now
            self._plot()

    def _plot(self) -> None:
        self.query_one("#loss-plot", LossChart).draw(
            list(zip(self.train_steps, self.train_losses)), list(self.val_points))


class LossChart(Widget):
    """The whole run as a plotext chart, built when the data or the size changes and kept as text.

    textual-plotext rebuilds its figure on every render, so showing the Train tab again cost
    50-80 ms while training; here a render reuses the last build, and builds again only when the
    data, the settings or the widget's size changed since. Building at render time means the chart
    always fits the size it is drawn at, also for data given before the first layout.
    The train curve is drawn smoothed as the session's settings say (TensorBoard's moving
    average, `[` and `]`), over its raw values in grey; `l` puts the loss axis on a log scale.
    """

    def __init__(self, settings: ChartSettings, **kw) -> None:
        super().__init__(**kw)
        self.settings = settings
        self._train: list[tuple[int, float]] = []
        self._val: list[tuple[int, float]] = []
        self._built: tuple[int, int] | None = None
        self._text = Text()

    def draw(self, train: list[tuple[int, float]], val: list[tuple[int, float]]) -> None:
        self._train, self._val = train, val
        self.redraw()

    def redraw(self) -> None:
        """Build again at the next render (the data or the settings changed)."""
        self._built = None
        self.refresh()

    def render(self) -> Text:
        size = (self.size.width, self.size.height)
        if self._built != size:
            self._built = size
            self._text = self._build(*size)
        return self._text

    def _build(self, width: int, height: int) -> Text:
        if width < 20 or height < 5:
            return Text()
        settings = self.settings
        new_figure(width, height, f"loss over the whole run (nats) · {settings.describe()}", "step")
        # about 200 points: the chart is for the trend, the readout for the last value
        raw, smoothed = settings.curve([(float(s), v) for s, v in self._train])
        if raw and settings.smoothing:
            plt.plot([x for x, _ in raw], [y for _, y in raw], color="gray", marker="braille")
            plt.plot([x for x, _ in smoothed], [y for _, y in smoothed], label="train (smoothed)",
                     marker="braille")
        elif raw:
            plt.plot([x for x, _ in raw], [y for _, y in raw], label="train", marker="braille")
        val = [(s, v) for s, v in self._val if v > 0 or not settings.log_scale]
        if val:
            plt.plot([s for s, _ in val], [v for _, v in val], label="val", marker="braille")
        steps = [x for x, _ in raw] + [s for s, _ in val]
        if steps:
            plt.xticks(whole_ticks(min(steps), max(steps), max(2, width // 16)))
        return Text.from_ansi(build_figure(settings.log_scale, bool(steps)))
