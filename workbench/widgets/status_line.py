"""One-line run status: state, step, epoch, losses, throughput, ETA, lr and device."""

from __future__ import annotations

from textual.widgets import Static

from rnn_engine.events import StepFinished


def clock(seconds: float) -> str:
    if seconds < 0:
        return "--:--"
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class StatusLine(Static):
    """What the run is doing right now, in one line."""

    DEFAULT_CSS = """
    StatusLine { height: 1; width: 1fr; background: $boost; padding: 0 1; }
    """

    def __init__(self, **kw) -> None:
        super().__init__("idle — press s to start, ? for help", **kw)
        self.state = "idle"
        self.device = "cpu"
        self.last: StepFinished | None = None
        self.unit = "chars"

    def set_state(self, state: str) -> None:
        self.state = state
        self.refresh_text()

    def show_step(self, event: StepFinished) -> None:
        self.last = event
        self.refresh_text()

    def refresh_text(self) -> None:
        e = self.last
        colour = {"training": "green", "paused": "yellow", "failed": "red"}.get(self.state, "white")
        head = f"[b {colour}]{self.state.upper()}[/]  device {self.device}"
        if e is None:
            hint = "press s to start, ? for help" if self.state in ("idle", "failed") else "loading data…"
            self.update(f"{head}  — {hint}", layout=False)
            return
        self.update(
            f"{head}  step {e.step}  epoch {e.epoch}  loss {e.loss:.4f}  lr {e.lr:.2e}  "
            f"{e.items_per_s:,.0f} {self.unit}/s  {e.progress:4.0%}  "
            f"elapsed {clock(e.elapsed)}  ETA {clock(e.eta)}", layout=False)
