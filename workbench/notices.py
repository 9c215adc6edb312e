"""Telling the user when a run needs them: it finished, failed, died, was pruned, paused by itself;
and when a sweep has ended.

`RunWatch.look` compares each scan of the runs directory with the one before and returns a notice
for every run whose state changed that way; the app shows each as a notification and rings the
terminal bell. Pure: it reads RunInfo rows only, so it is tested without an app.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from rnn_engine.rundir.runs import RunInfo
from rnn_engine.sweep.listing import SweepInfo

LIVE = ("starting", "running", "paused")
USER_PAUSE = "paused by user"


@dataclass(frozen=True)
class Notice:
    """One thing to tell: which run, what happened, and how loudly (Textual's severities)."""

    run_id: str
    message: str
    severity: str  # "information", "warning" or "error"


def notice_for(run: RunInfo) -> Notice | None:
    """What to say of a run in the state it has just reached; None where nothing needs saying."""
    name = f"Run {run.run_id}"
    # a loss is the best of the run's whole lineage (a resumed run starts from its parent's best),
    # and the status line calls it so; an accuracy is the final test accuracy
    best = "" if run.best == "—" else f" (best {run.best})" if run.best.startswith("val") else \
        f" ({run.best})"
    if run.state == "finished":
        return Notice(run.run_id, f"{name} finished at step {run.step}{best}.", "information")
    if run.state == "stopped":
        return Notice(run.run_id, f"{name} stopped at step {run.step}{best}.", "information")
    if run.state == "pruned":
        return Notice(run.run_id, f"{name} was pruned by its sweep at step {run.step}{best}.", "warning")
    if run.state == "failed":
        return Notice(run.run_id, f"{name} failed: {run.reason or 'see its output.log'}", "error")
    if run.state == "dead":
        return Notice(run.run_id, f"{name} died: {run.reason}", "error")
    if run.state == "paused" and run.reason and run.reason != USER_PAUSE:
        return Notice(run.run_id, f"{name} paused itself: {run.reason}", "error")
    return None


class RunWatch:
    """The runs' states from the last look; a notice for each change a user wants to hear of."""

    def __init__(self, since: float) -> None:
        self.since = since  # runs that started before this and ended before the first look say nothing
        self._last: dict[str, tuple[str, str]] | None = None
        self._sweeps: dict[str, str] | None = None

    def look_at_sweeps(self, sweeps: Iterable[SweepInfo]) -> list[Notice]:
        """A notice for each sweep that was running at the last look and has ended since."""
        now = {s.study: s.state for s in sweeps}
        before, self._sweeps = self._sweeps, now
        if before is None:
            return []
        return [Notice(f"sweep:{study}", f"Sweep {study} {state}: w shows its trials and the best.",
                       "error" if state in ("failed", "dead") else "information")
                for study, state in now.items()
                if before.get(study) in LIVE and state not in LIVE]

    def look(self, runs: Iterable[RunInfo]) -> list[Notice]:
        runs = list(runs)
        now = {r.run_id: (r.state, r.reason) for r in runs}
        before, self._last = self._last, now
        notices = []
        for run in runs:
            if before is None:
                continue  # the first look only learns what is there
            previous = before.get(run.run_id)
            if previous == now[run.run_id]:
                continue
            if previous is None and run.state not in LIVE and run.started < self.since:
                continue  # an old run that has just become visible
            if previous is not None and previous[0] not in LIVE and run.state not in LIVE:
                continue  # one end state read as another (stopped, then its log read): said already
            notice = notice_for(run)
            if notice is not None:
                notices.append(notice)
        return notices
