"""The Train tab: the loss charts, the generated text, the gradients and the activity log of the shown run.

It draws what the run's events show (event_text.py) and the steps it logs, at a pace a slow core
can afford: the status line's numbers at most every REDRAW_EVERY seconds, the panes every
PANES_EVERY, and everything at once when an event other than a step arrives.
"""

from __future__ import annotations

import time

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import ScrollableContainer, Vertical

from rnn_engine.events import GradientsMeasured, StepFinished

from ..actions import TRAIN, bindings
from ..curves import ChartSettings
from ..event_text import Shown
from .figure import ChartKeys
from .grad_panel import GradientPanel
from .latest_strip import LatestStrip
from .loss_panel import LossChart, LossPanel
from .sample_log import SampleLog
from .status_line import StatusLine
from .text_log import TextLog

# On a slow core a redraw of the panes costs ~15 ms of CPU, and on a two-core machine a viewer
# takes what it uses from the run it watches.
REDRAW_EVERY = 1.0
PANES_EVERY = 2.0


class TrainView(ChartKeys, ScrollableContainer):
    """The shown run's progress; side by side on a large terminal, one scrolling column on a small one."""

    BINDINGS = bindings(TRAIN)  # the chart keys, from the one table (actions.py)

    def __init__(self, chart: ChartSettings, status: StatusLine, **kw) -> None:
        super().__init__(**kw)
        self.chart = chart  # the loss charts' smoothing and scale, shared with the compare screen
        self.status = status  # the app's status line: its step figures are redrawn at this pace
        self.latest_sample = ""  # the newest generated text, for the Inside tab
        self._last_step: StepFinished | None = None  # the newest step, drawn at the next redraw
        self._drawn = 0.0  # when the status line was last redrawn for new steps
        self._panes_drawn = 0.0  # and the loss and gradient panes
        self._draw_pending = False

    def compose(self) -> ComposeResult:
        with Vertical(id="train-left"):
            yield LossPanel(self.chart, between=LatestStrip(id="latest"), id="loss")
            yield SampleLog(id="samples")
        with Vertical(id="train-right"):
            yield GradientPanel(id="grads")
            yield TextLog(id="activity")

    def on_mount(self) -> None:
        self.query_one("#activity", TextLog).border_title = "activity"

    def clear(self) -> None:
        """A new run is shown: nothing of the last one stays."""
        self._last_step = None
        self.latest_sample = ""
        self.query_one(LossPanel).clear_curves()
        self.query_one(SampleLog).clear()
        self.query_one(GradientPanel).clear()
        self.query_one(LatestStrip).clear()

    def show_task(self, task: str) -> None:
        self.query_one(SampleLog).border_title = "generated text" if task == "charlm" else \
            "held-out names: the model's guesses"

    def log(self, *entries: str | Text) -> None:
        self.query_one("#activity", TextLog).add(*entries)

    def add_sample(self, heading: str, text: str) -> None:
        self.query_one(SampleLog).add_sample(heading, text)
        self.query_one(LatestStrip).show_sample(heading, text)
        self.latest_sample = text

    def show(self, steps: list[tuple[int, float]], last_step: StepFinished | None,
             grads: GradientsMeasured | None, shown: list[Shown], replay: bool) -> None:
        """A batch of what the run logged: its steps, its newest gradients, and what its events show."""
        if steps:
            self.query_one(LossPanel).add_steps(steps)
        if last_step is not None:
            self._last_step = last_step
        if grads is not None:
            self.query_one(GradientPanel).show_measurement(grads)
        log = [line for s in shown for line in s.log]
        samples = [sample for s in shown for sample in s.samples]
        for s in shown:
            if s.val is not None:
                self.query_one(LossPanel).add_val(*s.val)
        if log:
            self.log(*log)
        if samples:
            self.query_one(SampleLog).add_samples(samples)
            self.query_one(LatestStrip).show_sample(*samples[-1])
            self.latest_sample = samples[-1][1]
        if shown or grads is not None or replay:
            self.redraw(force_plot=replay, panes=True)
        elif steps:
            self._redraw_soon()

    def _redraw_soon(self) -> None:
        """Redraw what steps change at most every REDRAW_EVERY seconds, and always the newest."""
        if self._draw_pending:
            return
        wait = self._drawn + REDRAW_EVERY - time.monotonic()
        if wait <= 0:
            self.redraw()
        else:
            self._draw_pending = True
            self.set_timer(wait, self.redraw)

    def redraw(self, force_plot: bool = False, panes: bool = False) -> None:
        """The status line; and the panes when `panes`, or when they were last drawn PANES_EVERY ago."""
        if not self.is_attached:
            return  # a timer can fire while the app closes
        self._draw_pending = False
        now = self._drawn = time.monotonic()
        if self._last_step is not None:
            self.status.show_step(self._last_step)
        if panes or force_plot or now - self._panes_drawn >= PANES_EVERY:
            self._panes_drawn = now
            if self._last_step is not None:
                self.query_one(GradientPanel).show_step(self._last_step)
                self.query_one(LatestStrip).show_step(self._last_step)
            self.query_one(LossPanel).redraw(force_plot=force_plot)

    def chart_changed(self) -> None:
        self.query_one("#loss-plot", LossChart).redraw()
        self.notify(f"Loss charts: {self.chart.describe()}", timeout=3)
