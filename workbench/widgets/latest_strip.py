"""The Train tab's top lines on a small terminal: the newest sample and gradient norm, under the loss."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from rnn_engine.events import StepFinished

LINES = 3  # of the sample: its start, where a primed sample shows its prime


class LatestStrip(Static):
    """Shown only in the compact layout, where the full panes are further down the scroll."""

    DEFAULT_CSS = """
    LatestStrip { height: auto; padding: 0 0 1 0; }
    """

    def __init__(self, **kw) -> None:
        super().__init__("", **kw)
        self.heading = ""
        self.sample = ""
        self.grad = "gradient norm —"

    def on_mount(self) -> None:
        self._draw()

    def clear(self) -> None:
        self.heading, self.sample, self.grad = "", "", "gradient norm —"
        self._draw()

    def show_sample(self, heading: str, text: str) -> None:
        self.heading, self.sample = heading, text
        self._draw()

    def show_step(self, event: StepFinished) -> None:
        clipped = " clipped" if event.clipped_norm < event.grad_norm else ""
        grad = f"gradient norm ‖g‖ {event.grad_norm:.4f} → {event.clipped_norm:.4f}{clipped}"
        if grad != self.grad:
            self.grad = grad
            self._draw()

    def _draw(self) -> None:
        out = Text()
        if self.sample:
            out.append(f"latest {self.heading}\n", style="bold magenta")
            lines = [line for line in self.sample.rstrip().splitlines() if line.strip()]
            out.append("\n".join(lines[:LINES]))
            out.append(" …\n" if len(lines) > LINES else "\n", style="dim")  # the rest: the samples pane
        else:
            out.append("no sample yet (g makes one) · more below: PgDn, or scroll\n", style="dim")
        out.append(self.grad, style="dim" if self.grad.endswith("—") else "")
        self.update(out)
