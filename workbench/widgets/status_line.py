"""One-line run status: state, run, step, epoch, loss, throughput, ETA, lr, device and resources."""

from __future__ import annotations

from textual.widgets import Static

from rnn_engine.events import StepFinished


def clock(seconds: float) -> str:
    if seconds < 0:
        return "--:--"
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


COLOURS = {"training": "green", "running": "green", "paused": "yellow", "failed": "red", "dead": "red",
           "stopping": "yellow", "pausing": "yellow", "saving": "yellow"}


class StatusLine(Static):
    """What the shown run is doing right now, in one line (two when resources are known)."""

    DEFAULT_CSS = """
    StatusLine { height: 2; width: 1fr; background: $boost; padding: 0 1; }
    """

    def __init__(self, **kw) -> None:
        super().__init__("idle — press s to start, ? for help", **kw)
        self.state = "idle"
        self.device = "cpu"
        self.last: StepFinished | None = None
        self.unit = "chars"
        self.run_id = ""
        self.resources = ""
        self.activity = ""

    def reset(self, run_id: str, unit: str) -> None:
        self.run_id, self.unit = run_id, unit
        self.last, self.resources, self.activity = None, "", ""
        self.refresh_text()

    def set_state(self, state: str) -> None:
        self.state = state
        self.refresh_text()

    def show_step(self, event: StepFinished) -> None:
        self.last = event
        self.refresh_text()

    def show_process(self, resources: str, activity: str) -> None:
        if (resources, activity) != (self.resources, self.activity):
            self.resources, self.activity = resources, activity
            self.refresh_text()

    def refresh_text(self) -> None:
        e = self.last
        colour = COLOURS.get(self.state, "white")
        head = f"[b {colour}]{self.state.upper()}[/]  device {self.device}"
        ranks = ""
        if e is not None and e.world_size > 1 and e.rank_items_per_s:
            # the throughput in the first line is the whole job's; here each rank's share of it
            each = " · ".join(f"{r:,.0f}" for r in e.rank_items_per_s)
            ranks = f"ranks {each} {self.unit}/s"
        second = "  ".join(x for x in (f"run {self.run_id}" if self.run_id else "", ranks, self.resources,
                                       f"[yellow]{self.activity}[/]" if self.activity else "") if x)
        if e is None:
            hint = {"idle": "press s to start, ? for help", "failed": "press s to start, ? for help",
                    "starting": "loading data…"}.get(self.state, "")
            self.update(f"{head}  {'— ' + hint if hint else ''}\n{second}", layout=False)
            return
        self.update(
            f"{head}  step {e.step}  epoch {e.epoch}  loss {e.loss:.4f}  lr {e.lr:.2e}  "
            f"{e.items_per_s:,.0f} {self.unit}/s  {e.progress:4.0%}  "
            f"elapsed {clock(e.elapsed)}  ETA {clock(e.eta)}\n{second}", layout=False)
