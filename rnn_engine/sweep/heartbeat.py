"""Trial heartbeats: each sweep beats for the trials it runs and fails the ones nobody beats for.

Optuna's own heartbeat (`heartbeat_interval`, `grace_period`) lives in `study.optimize`'s thread
and in the RDB storage alone; a sweep asks and tells across processes, on a database or a journal
file, so it keeps the same contract itself, the same way on both. Each running trial's user
attributes hold `heartbeat`, rewritten by its sweep every interval. Another sweep that sees a
running trial's heartbeat unchanged for the trial's grace period, measured on its own clock (so
machines' clocks need not agree), fails it with the reason ("worker on HOST stopped answering"),
and, unless it was a retry already, queues a retry with the same parameters that any sweep picks
up next. The failed trial is kept with its reason; its retry (`retry_of`) counts in its place.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..rundir.runs import write_trial_note

HEARTBEAT_INTERVAL = 10.0  # seconds between a sweep's beats for its trials
GRACE_PERIOD = 60.0  # seconds without a beat after which another sweep fails a trial


class Heartbeats:
    """One sweep's side of the heartbeats (see the module's docstring)."""

    def __init__(self, study: Any, interval: float, grace: float, host: str, say: Callable[[str], None],
                 lock: Callable[[], contextlib.AbstractContextManager]) -> None:
        self.study = study
        self.interval = interval
        self.grace = grace
        self.host = host
        self.say = say
        self.lock = lock  # the sweeps of one journal file fail a trial one at a time
        self.last_beat = 0.0
        self.seen: dict[int, tuple[Any, float]] = {}  # trial -> (its last sign of life, when it changed)

    def _trial_id(self, number: int) -> int:
        return self.study._storage.get_trial_id_from_study_id_trial_number(self.study._study_id, number)

    def beat(self, watched: dict[int, Any], now: bool = False) -> None:
        """Rewrite the heartbeat of every trial this sweep runs, once an interval has passed (or `now`)."""
        clock = time.time()
        if not watched or (not now and clock - self.last_beat < self.interval):
            return
        self.last_beat = clock
        for number in list(watched):
            with contextlib.suppress(Exception):  # told meanwhile (the run ended): nothing to beat for
                self.study._storage.set_trial_user_attr(self._trial_id(number), "heartbeat", clock)

    def reap(self, watched: dict[int, Any]) -> list[int]:
        """Fail the running trials of other sweeps whose heartbeat stood still for their grace period."""
        clock = time.monotonic()
        stale = []
        running = set()
        for t in self.study.get_trials(deepcopy=False):
            if t.state.name != "RUNNING" or t.number in watched:
                continue
            running.add(t.number)
            sign = (t.user_attrs.get("heartbeat"), t.user_attrs.get("sweep_pid"))
            previous = self.seen.get(t.number)
            if previous is None or previous[0] != sign:
                self.seen[t.number] = (sign, clock)
                continue
            grace = float(t.user_attrs.get("grace_period", self.grace))
            if clock - previous[1] > grace:
                stale.append((t, clock - previous[1]))
        self.seen = {n: v for n, v in self.seen.items() if n in running}
        failed = []
        for t, silent in stale:  # silent: as long as this sweep has seen it so, by its own clock
            host = t.user_attrs.get("host", "another machine")
            reason = f"worker on {host} stopped answering (no heartbeat for {silent:.0f} s)"
            with self.lock():
                if self.fail_and_retry(t, reason):
                    failed.append(t.number)
        return failed

    def fail_and_retry(self, trial: Any, reason: str) -> bool:
        """Fail a running trial whose worker is gone and queue its retry; False where another sweep
        got there first."""
        from optuna.exceptions import UpdateFinishedTrialError
        from optuna.trial import TrialState

        storage = self.study._storage
        trial_id = self._trial_id(trial.number)
        if storage.get_trial(trial_id).state != TrialState.RUNNING:
            return False
        retry = trial.user_attrs.get("retry_of") is None
        told = f"failed: {reason}; " + ("queued again" if retry else "a retry already, not queued again")
        try:
            # the reason first: a database takes no attribute of a finished trial; and the row is
            # locked while its state changes, so of two sweeps one fails it
            storage.set_trial_user_attr(trial_id, "reason", reason)
            storage.set_trial_state_values(trial_id, TrialState.FAIL)
        except UpdateFinishedTrialError:
            return False
        if retry:
            self.study.enqueue_trial(dict(trial.params), user_attrs={"retry_of": trial.number})
        self.say(f"trial {trial.number}: {told}")
        run_dir = str(trial.user_attrs.get("run_dir", ""))
        if run_dir and Path(run_dir).is_dir():  # the dead worker's runs directory is shared with this one
            write_trial_note(Path(run_dir), f"trial {trial.number} of sweep {self.study.study_name}: {told}")
        self.seen.pop(trial.number, None)
        return True
