"""Messages the training worker posts to the app; bursts of step events travel together."""

from __future__ import annotations

import threading
import time

from textual.message import Message

from rnn_engine.events import Event, StepFinished


class TrainerEvents(Message):
    """A batch of engine events, oldest first, posted from the worker thread."""

    def __init__(self, events: tuple[Event, ...]) -> None:
        super().__init__()
        self.events = events


class RunEnded(Message):
    """The worker returned: `summary` on success, `error` (one line) on failure."""

    def __init__(self, summary: dict | None, error: str | None) -> None:
        super().__init__()
        self.summary = summary
        self.error = error


class CoalescingSink:
    """The trainer's sink in the TUI: collects events and posts them a few times a second.

    Step events wait for the next post, at most `interval` seconds: a timer posts them when no
    later event does (after a single step while paused, nothing else follows). Anything else
    (epochs, pauses, answers to queries) is posted at once, together with the steps before it, so
    order is kept.
    """

    def __init__(self, post, interval: float = 0.25) -> None:
        self._post = post
        self._interval = interval
        self._pending: list[Event] = []
        self._last = 0.0
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        now = time.monotonic()
        with self._lock:
            self._pending.append(event)
            if isinstance(event, StepFinished) and now - self._last < self._interval:
                if self._timer is None:
                    self._timer = threading.Timer(self._interval - (now - self._last), self.flush)
                    self._timer.daemon = True
                    self._timer.start()
                return
        self.flush()

    def flush(self) -> None:
        """Post whatever is pending now."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            batch, self._pending = tuple(self._pending), []
            self._last = time.monotonic()
        if batch:
            self._post(TrainerEvents(batch))
