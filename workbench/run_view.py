"""The run the app shows: its directory, its process when the app started it, and the way to steer it.

Everything the app learns about a run comes from the run directory (events.jsonl, live.json) and
the run's control endpoint, whichever process trains it: the app's own child, a headless
`workbench train`, or one started on another day. `follow` runs in a worker thread, reads what
the run appends twice a second and posts it; it never touches widgets.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rnn_engine.config import RunConfig
from rnn_engine.control.client import RunClient
from rnn_engine.rundir.eventlog import EventReader
from rnn_engine.rundir.launch import output_tail
from rnn_engine.rundir.layout import RunDir, RunDirError
from rnn_engine.rundir.liveness import FINAL, RunState, run_state

from .messages import RunEnded, RunEvents, RunReplied, RunStatus

POLL = 0.5  # seconds between reads of the log; steps are logged at most 4 times a second
STATUS_EVERY = 2.0  # seconds between reads of live.json (state, CPU, memory): its heartbeat


@dataclass
class RunView:
    """One attached run, live or not: where it is and the ways to reach it (its state: session.py)."""

    run_dir: Path
    process: subprocess.Popen | None = None  # set when this app started the run
    client: RunClient | None = None
    cancel: threading.Event = field(default_factory=threading.Event)

    @property
    def run_id(self) -> str:
        return self.run_dir.name

    def settings(self) -> tuple[RunConfig | None, str]:
        """The run's settings once they are written, else None; and why they cannot be read, if so."""
        files = RunDir(self.run_dir)
        if not files.holds_run():
            return None, ""  # a run just started: its process writes them in a moment
        try:
            return files.settings(), ""
        except RunDirError as exc:
            return None, str(exc)

    # -- steering -----------------------------------------------------------------------------------
    def connect(self, post: Callable[[Any], None]) -> RunClient:
        """The connection to the run's endpoint, made on first use; replies are posted as RunReplied."""
        if self.client is None:
            client = RunClient.connect(self.run_dir, timeout=5.0)
            client.listen(lambda message: post(RunReplied(self.run_dir, message)),
                          lambda: self._forget(client))
            self.client = client
        return self.client

    def _forget(self, client: RunClient) -> None:
        if self.client is client:
            self.client = None

    def close(self) -> None:
        self.cancel.set()
        if self.client is not None:
            self.client.close()
            self.client = None

    # -- following ----------------------------------------------------------------------------------
    def current_state(self) -> RunState:
        """The run's state; a run this app has just started is 'starting' until its record appears."""
        state = run_state(self.run_dir)
        if self.process is not None and not state.record and self.process.poll() is None:
            return RunState("starting", {})
        return state

    def follow(self, post: Callable[[Any], None], cancelled: Callable[[], bool] = lambda: False) -> None:
        """Replay the log, then follow it until the run ends or is let go of (worker thread)."""
        # the gradient panel shows the newest measurement; older ones need not even be parsed
        reader = EventReader(RunDir(self.run_dir).events, frozenset({"GradientsMeasured",
                                                                       "EvaluationProgress"}))
        post(RunEvents(self.run_dir, reader.read(), replay=True))
        last_status: tuple[Any, ...] = ()
        waited = STATUS_EVERY
        while not (self.cancel.is_set() or cancelled()):
            batch = reader.read()
            if batch:
                post(RunEvents(self.run_dir, batch, replay=False))
            waited += POLL
            if waited >= STATUS_EVERY or batch.events:
                waited = 0.0
                state = self.current_state()
                if self.process is not None and not state.record and self.process.poll() is not None:
                    post(RunEnded(self.run_dir, "failed", self._start_error()))
                    return
                shown = (state.state, state.record.get("heartbeat"), state.record.get("activity"))
                if shown != last_status:
                    last_status = shown
                    post(RunStatus(self.run_dir, state))
                if state.state in FINAL or state.state == "dead":
                    # read what the run wrote last, then say how it ended
                    post(RunEvents(self.run_dir, reader.read(), replay=False))
                    post(RunEnded(self.run_dir, state.state, self._why(state)))
                    return
            self.cancel.wait(POLL)

    def _why(self, state: RunState) -> str | None:
        if state.state == "failed":
            return state.reason or output_tail(self.run_dir) or "the run failed"
        if state.state == "dead":
            return f"the run's process is gone without a final event ({state.reason})"
        return None

    def _start_error(self) -> str:
        """Why the process ended before it could train; its directory goes when it holds nothing else."""
        code = self.process.returncode if self.process is not None else "unknown"
        error = output_tail(self.run_dir) or f"the training process exited with status {code}"
        if not RunDir(self.run_dir).holds_run():
            shutil.rmtree(self.run_dir, ignore_errors=True)
        return error.removeprefix("workbench: ")
