"""Messages the app's worker threads post: a run's events, its state, its end, and its replies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.message import Message

from rnn_engine.rundir.eventlog import EventBatch
from rnn_engine.rundir.liveness import RunState
from rnn_engine.rundir.runs import RunInfo
from rnn_engine.sweep.listing import SweepInfo


class RunEvents(Message):
    """What a run appended to its log since the last read; `replay` for the history read on attach."""

    def __init__(self, run_dir: Path, batch: EventBatch, replay: bool) -> None:
        super().__init__()
        self.run_dir = run_dir
        self.batch = batch
        self.replay = replay


class RunStatus(Message):
    """The run's liveness record as last read: state, activity, CPU, memory, GPU."""

    def __init__(self, run_dir: Path, state: RunState) -> None:
        super().__init__()
        self.run_dir = run_dir
        self.state = state


class RunEnded(Message):
    """The run finished, stopped, failed or died; `error` says why when it did not end well."""

    def __init__(self, run_dir: Path, state: str, error: str | None) -> None:
        super().__init__()
        self.run_dir = run_dir
        self.state = state
        self.error = error


class RunReplied(Message):
    """A line from the run's control endpoint: a reply `{id, ok, ...}` or an answer `{id, event}`."""

    def __init__(self, run_dir: Path, message: dict[str, Any]) -> None:
        super().__init__()
        self.run_dir = run_dir
        self.message = message


class RunsScanned(Message):
    """The runs directory as just read, newest first, and its sweeps."""

    def __init__(self, runs: list[RunInfo], sweeps: list[SweepInfo]) -> None:
        super().__init__()
        self.runs = runs
        self.sweeps = sweeps


class Answered(Message):
    """A result computed in a worker from a saved model (a sample, a classification) or a device list."""

    def __init__(self, kind: str, value: Any, request: Any = None) -> None:
        super().__init__()
        self.kind = kind
        self.value = value
        self.request = request
