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


# -- what the app's and the screens' workers found, one class each (past tense, like the events) --
class DevicesListed(Message):
    """The devices this machine offers, each with why not where it is absent."""

    def __init__(self, devices: dict[str, str]) -> None:
        super().__init__()
        self.devices = devices


class SavedModelSampled(Message):
    """A sample written by an ended run's saved model."""

    def __init__(self, sample: Any) -> None:
        super().__init__()
        self.sample = sample  # a Sampled event


class SavedModelClassified(Message):
    """A typed name's top languages, by an ended run's saved model."""

    def __init__(self, name: str, results: list[tuple[str, float]]) -> None:
        super().__init__()
        self.name = name
        self.results = results


class CheckReported(Message):
    """The torch.nn check's report on an ended run's saved model ({'error': ...} where it could not run)."""

    def __init__(self, report: dict[str, Any]) -> None:
        super().__init__()
        self.report = report


class InspectionMade(Message):
    """What the Inside view shows for one text, computed on a saved model."""

    def __init__(self, result: dict[str, Any]) -> None:
        super().__init__()
        self.result = result


class InsideTextRead(Message):
    """A validation excerpt for the Inside view, and the units it should include."""

    def __init__(self, text: str, units: list[tuple[int, int]]) -> None:
        super().__init__()
        self.text = text
        self.units = units


class InsideFailed(Message):
    """Why the Inside view has nothing to show."""

    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason


class WorkFailed(Message):
    """A worker's error, for a notice."""

    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


class EngineNoted(Message):
    """A line the engine logged in this process (building the kernels, say), for the activity log."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class CurvesRead(Message):
    """The compared runs' curves and figures."""

    def __init__(self, curves: list[Any]) -> None:
        super().__init__()
        self.curves = curves


class SweepRead(Message):
    """A sweep's study as just read: where it is, its trials, and what mattered."""

    def __init__(self, info: Any, rows: list[Any], importances: dict[str, float]) -> None:
        super().__init__()
        self.info = info
        self.rows = rows
        self.importances = importances


class SweepUnreadable(Message):
    """Why a sweep's study could not be read."""

    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason
