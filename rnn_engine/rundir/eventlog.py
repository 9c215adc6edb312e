"""runs/<id>/events.jsonl: written with fast steps rolled up, read back fast and followed as it grows."""

from __future__ import annotations

import json
import math
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..events import Event, StepFinished, event_from_dict

# Steps closer together than this share one record. At most 4 step records a second keep a
# 10-hour log near 150k lines (~35 MB) however small the model, and still feed a curve that
# is redrawn a few times a second.
STEP_INTERVAL = 0.25
# set it to 0 to log every step on its own (exact per-step losses, for comparing runs step by step)
INTERVAL_ENV = "RNN_WORKBENCH_STEP_LOG_INTERVAL"


def _interval_from_env() -> float:
    try:
        return max(0.0, float(os.environ.get(INTERVAL_ENV, STEP_INTERVAL)))
    except ValueError:
        return STEP_INTERVAL


class EventLog:
    """Appends events as JSON lines; StepFinished events closer than `interval` s become one record.

    A rolled-up record is the latest step with `loss` replaced by the mean over the steps it stands
    for and `span` their count. Any other event first writes the pending step, so the order of the
    file is the order of the run. Thread-safe: the trainer writes, a heartbeat may flush.
    """

    def __init__(self, path: str | os.PathLike, interval: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.path = Path(path)
        self.interval = _interval_from_env() if interval is None else interval
        self._clock = clock
        self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - held for the run
        self._lock = threading.Lock()
        self._pending: StepFinished | None = None
        self._loss_sum = 0.0
        self._count = 0
        self._last_step_written = -math.inf
        self.lines = 0
        self.bytes = 0

    def write(self, event: Event) -> None:
        if not event.logged:
            return
        with self._lock:
            if self._fh.closed:
                return  # the run has ended; a late report from another thread has no place left
            if isinstance(event, StepFinished):
                self._pending = event
                self._loss_sum += event.loss
                self._count += 1
                if self._clock() - self._last_step_written >= self.interval:
                    self._write_pending()
                return
            self._write_pending()
            self._write_line(event.to_json())

    def flush(self) -> None:
        """Write a held step now (the run is about to wait, or to end)."""
        with self._lock:
            if not self._fh.closed:
                self._write_pending()

    def close(self) -> None:
        with self._lock:
            if not self._fh.closed:
                self._write_pending()
                self._fh.close()

    def _write_pending(self) -> None:
        if self._pending is None:
            return
        event = self._pending
        if self._count > 1:
            event = replace(event, loss=self._loss_sum / self._count, span=self._count)
        self._pending, self._loss_sum, self._count = None, 0.0, 0
        self._last_step_written = self._clock()
        self._write_line(event.to_json())

    def _write_line(self, line: str) -> None:
        self._fh.write(line + "\n")
        # readers follow the file as it grows; a line must reach them whole and soon
        self._fh.flush()
        self.lines += 1
        self.bytes += len(line) + 1


@dataclass
class EventBatch:
    """What a read of the log found: every step's (step, loss), the newest step, the other events."""

    steps: list[tuple[int, float]] = field(default_factory=list)
    last_step: StepFinished | None = None
    events: list[Event] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.steps or self.events)


_STEP_PREFIX = b'{"event":"StepFinished"'
# The writer emits fields in dataclass order; these read step and loss without parsing the rest.
# Each pattern starts with a literal newline (the text is read with one put in front), which
# the regular-expression engine finds several times faster than a multi-line '^'.
_STEP = re.compile(rb'\n\{"event":"StepFinished","step":(\d+),"epoch":-?\d+,"loss":("?[-+0-9.eEnaif]+"?),')
_OTHER = re.compile(rb'\n\{"event":"(?!StepFinished")(\w+)"')


def parse_lines(data: bytes, latest_only: frozenset[str] = frozenset()) -> EventBatch:
    """Events from complete JSON lines. Step lines, which are most of a log, take a fast path.

    Parsing every line with json costs ~12 us on a slow core; a run with 200k step records would
    take seconds to open. Steps are read with one regular-expression pass instead, and only the
    newest is parsed whole (the status line shows all of its fields). Of the event kinds named in
    `latest_only` (a reader that shows only the newest gradient measurement, say), the others
    are skipped unparsed.
    """
    batch = EventBatch()
    text = b"\n" + data
    found = _STEP.findall(text)
    # where the other lines start, and their kind, without copying them (most are never parsed)
    starts = [(m.start() + 1, m.group(1).decode()) for m in _OTHER.finditer(text)]
    # the fast path only when it accounts for every line: a log written with other spacing (by hand,
    # by another tool) is read the slow way rather than as empty
    if len(found) == text.count(_STEP_PREFIX) and len(found) + len(starts) == text.count(b"\n{"):
        steps = [int(step) for step, _ in found]
        try:
            losses = list(map(float, [loss for _, loss in found]))
        except ValueError:  # "nan" or "inf", written as strings
            losses = [float(loss.strip(b'"')) for _, loss in found]
        batch.steps = list(zip(steps, losses))
        if latest_only:
            last = {kind: start for start, kind in starts if kind in latest_only}
            starts = [(start, kind) for start, kind in starts
                      if kind not in latest_only or last[kind] == start]
        others = [text[start:text.find(b"\n", start)] for start, _ in starts]
    else:  # a step line written some other way: read everything the slow way
        others = data.splitlines()
    for line in others:
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a damaged line (a writer killed mid-line) costs that line only
        if not isinstance(record, dict):
            continue
        event = event_from_dict(record)
        if isinstance(event, StepFinished):
            batch.steps.append((event.step, event.loss))
            batch.last_step = event
        elif event is not None:
            batch.events.append(event)
    if batch.last_step is None and batch.steps:
        start = text.rfind(b"\n" + _STEP_PREFIX) + 1
        end = text.find(b"\n", start)
        try:
            event = event_from_dict(json.loads(text[start:end if end >= 0 else None]))
        except ValueError:
            event = None
        batch.last_step = event if isinstance(event, StepFinished) else None
    return batch


class EventReader:
    """Reads events.jsonl from the start, then only what was appended since; whole lines only."""

    def __init__(self, path: str | os.PathLike, latest_only: frozenset[str] = frozenset()) -> None:
        self.path = Path(path)
        self.latest_only = latest_only
        self.offset = 0
        self._rest = b""

    def read(self) -> EventBatch:
        try:
            size = os.stat(self.path).st_size
        except OSError:
            return EventBatch()
        if size < self.offset:  # replaced by a shorter file: start again
            self.offset, self._rest = 0, b""
        if size == self.offset:
            return EventBatch()
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                data = fh.read(size - self.offset)
        except OSError:
            return EventBatch()
        self.offset += len(data)
        data = self._rest + data
        cut = data.rfind(b"\n") + 1
        self._rest = data[cut:]
        return parse_lines(data[:cut], self.latest_only) if cut else EventBatch()


def last_record(path: str | os.PathLike, max_bytes: int = 1 << 16) -> dict:
    """The last complete JSON line of a log, read from the end only; {} when there is none."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(0, size - max_bytes))
            lines = fh.read().splitlines()
    except OSError:
        return {}
    for line in reversed(lines):
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            return record
    return {}
