"""One-line run status: state, run, step, epoch, loss, throughput, ETA, lr, device and resources."""

from __future__ import annotations

from typing import Any

from textual.widgets import Static

from rnn_engine.events import StepFinished


def clock(seconds: float) -> str:
    if seconds < 0:
        return "--:--"
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


COLOURS = {"training": "green", "running": "green", "paused": "yellow", "failed": "red", "dead": "red",
           "pruned": "yellow",
           "stopping": "yellow", "pausing": "yellow", "saving": "yellow"}


class StatusLine(Static):
    """What the shown run is doing right now, in one line (two when resources are known)."""

    DEFAULT_CSS = """
    StatusLine { height: 2; width: 1fr; background: $boost; padding: 0 1; text-wrap: nowrap;
                 text-overflow: ellipsis; }
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
        self.summary: dict[str, Any] | None = None  # a run that has ended: its final figures

    def reset(self, run_id: str, unit: str) -> None:
        self.run_id, self.unit = run_id, unit
        self.last, self.resources, self.activity, self.summary = None, "", "", None
        self.refresh_text()

    def show_final(self, summary: dict[str, Any]) -> None:
        """The run has ended: its figures replace the progress and the ETA."""
        self.summary = summary
        self.refresh_text()

    def on_resize(self) -> None:
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
        narrow = 0 < self.size.width < 100  # an 80-column terminal: the short form fits one line
        if narrow:
            head = f"[b {colour}]{self.state.upper()}[/] {self.device}"
        if self.summary is not None and self.state not in ("training", "starting", "resuming"):
            self.update(f"{head}  {final_figures(self.summary, self.unit, narrow)}\n{second}", layout=False)
            return
        if e is None:
            hint = {"idle": "press s to start, ? for help", "failed": "press s to start, ? for help",
                    "starting": "loading data…"}.get(self.state, "")
            self.update(f"{head}  {'— ' + hint if hint else ''}\n{second}", layout=False)
            return
        if narrow:
            line = (f"step {e.step} ep {e.epoch} loss {e.loss:.4f} lr {e.lr:.1e} {e.items_per_s:,.0f}/s "
                    f"{e.progress:.0%} {clock(e.elapsed)} ETA {clock(e.eta)}")
        else:
            line = (f"step {e.step}  epoch {e.epoch}  loss {e.loss:.4f}  lr {e.lr:.2e}  "
                    f"{e.items_per_s:,.0f} {self.unit}/s  {e.progress:4.0%}  "
                    f"elapsed {clock(e.elapsed)}  ETA {clock(e.eta)}")
        self.update(f"{head} {line}\n{second}", layout=False)


def final_figures(summary: dict[str, Any], unit: str, narrow: bool = False) -> str:
    """An ended run's figures from its summary: steps, the metric, throughput, time."""
    parts = [f"step {summary.get('steps', '?')}"]
    if "val_loss" in summary:
        parts.append(f"{'val' if narrow else 'val loss'} {summary['val_loss']:.4f}")
        best = summary.get("best_val_loss")
        if isinstance(best, (int, float)) and best < summary["val_loss"]:
            parts.append(f"best {best:.4f}")
    if "test_accuracy" in summary:
        parts.append(f"accuracy {summary['test_accuracy']:.1%}")
    rate = summary.get("chars_per_s", summary.get("names_per_s"))
    if isinstance(rate, (int, float)):
        parts.append(f"{rate:,.0f} {'/s' if narrow else unit + '/s'}")
    if isinstance(summary.get("elapsed"), (int, float)):
        parts.append(("" if narrow else "took ") + clock(summary["elapsed"]))
    return ("  " if not narrow else " · ").join(parts)
