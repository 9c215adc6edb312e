"""Gradient panel: total norm before/after clipping, per-layer norms, and ‖∂L/∂h_t‖ across time."""

from __future__ import annotations

import math

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Label, Sparkline, Static

from rnn_engine.events import GradientsMeasured, StepFinished


def bar(value: float, top: float, width: int = 24) -> Text:
    filled = 0 if top <= 0 or not math.isfinite(value) else round(width * min(1.0, value / top))
    return Text("█" * filled + "·" * (width - filled), style="cyan")


class GradientPanel(Vertical):
    """Live gradient readouts; the time-step curve is drawn on a log scale so decay stays visible."""

    DEFAULT_CSS = """
    GradientPanel { height: auto; }
    GradientPanel #grad-timestep { height: 4; }
    GradientPanel #grad-total, GradientPanel #grad-timestep-note { height: 1; width: 1fr; }
    GradientPanel #grad-layers { height: auto; }
    """

    def compose(self) -> ComposeResult:
        yield Static("gradient norm ‖g‖ before clip —   after —", id="grad-total")
        yield Static("", id="grad-layers")
        yield Label("gradient norm through time ‖∂L_T/∂h_t‖, t = 1 … T (log)", id="grad-timestep-label")
        yield Sparkline([], id="grad-timestep")
        yield Static("", id="grad-timestep-note")

    def clear(self) -> None:
        self.query_one("#grad-total", Static).update("gradient norm ‖g‖ before clip —   after —")
        self.query_one("#grad-layers", Static).update("")
        self.query_one("#grad-timestep", Sparkline).data = []
        self.query_one("#grad-timestep-note", Static).update("")

    def show_step(self, event: StepFinished) -> None:
        self.query_one("#grad-total", Static).update(
            f"gradient norm ‖g‖ before clip {event.grad_norm:9.4f}   after {event.clipped_norm:9.4f}"
            + ("   [yellow]clipped[/]" if event.clipped_norm < event.grad_norm else ""), layout=False)

    def show_measurement(self, event: GradientsMeasured) -> None:
        table = Table.grid(padding=(0, 1))
        table.add_column(width=14)
        table.add_column(justify="right", width=10)
        table.add_column()
        top = max(event.per_layer.values(), default=0.0)
        for name, value in event.per_layer.items():
            table.add_row(name, f"{value:.4g}", bar(value, top))
        self.query_one("#grad-layers", Static).update(table)
        values = [v for v in event.per_timestep if math.isfinite(v)]
        if not values:
            return
        floor = 1e-12
        logs = [math.log10(max(v, floor)) for v in values]
        low = min(logs)
        self.query_one("#grad-timestep", Sparkline).data = [v - low for v in logs]
        first, last = max(values[0], floor), max(values[-1], floor)
        ratio = first / last
        verdict = ("vanishing" if ratio < 1e-3 else "exploding" if ratio > 1e3 else "healthy")
        self.query_one("#grad-timestep-note", Static).update(
            f"t=1: {values[0]:.2e}   t=T: {values[-1]:.2e}   ratio {ratio:.1e}  ({verdict})", layout=False)
