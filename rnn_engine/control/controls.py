"""Thread-safe requests to a running trainer, honoured at the next batch boundary."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from ..config import LIVE_FIELDS


@dataclass(frozen=True)
class SampleRequest:
    prime: str
    temperature: float
    length: int
    top_k: int = 0
    request: str = ""  # the asker, for the answer to find its way back


@dataclass(frozen=True)
class ClassifyRequest:
    names: tuple[str, ...]
    top_k: int
    request: str = ""


@dataclass(frozen=True)
class InspectRequest:
    text: str
    units: tuple[tuple[int, int], ...] = ()
    request: str = ""


@dataclass(frozen=True)
class CheckRequest:
    request: str = ""


@dataclass(frozen=True)
class EvaluateRequest:
    full: bool = False  # the whole validation split instead of the routine subset


def check_live(changes: dict[str, Any]) -> None:
    """Raise ValueError naming the fields that cannot change while a run is going."""
    fixed = sorted(set(changes) - LIVE_FIELDS)
    if fixed:
        raise ValueError(f"{', '.join(fixed)} cannot change mid-run; restart the run instead")



# what the trainer answers between two batches
Query = SampleRequest | ClassifyRequest | InspectRequest | CheckRequest | EvaluateRequest

class Controls:
    """Pause, resume, single step, stop, live hyperparameters, device switch and on-demand queries.

    Any thread may call these; the trainer reads them between batches, so a request takes effect
    after at most one batch and never in the middle of a backward pass.
    """

    def __init__(self) -> None:
        # reentrant: a stop signal's handler runs in the trainer's thread, possibly while that thread
        # is inside one of these methods holding the lock; a plain Lock would deadlock there
        self._lock = threading.RLock()
        self._wake = threading.Condition(self._lock)
        self._paused = False
        self._stop = False
        self.stop_reason = "stopped"
        self._single_steps = 0
        self._updates: dict[str, Any] = {}
        self._device: str | None = None
        self._queries: list[Query] = []

    # -- requests -------------------------------------------------------------------------------
    def pause(self) -> None:
        with self._lock:
            self._paused = True

    def resume(self) -> None:
        with self._wake:
            self._paused = False
            self._wake.notify_all()

    def step_once(self) -> None:
        """While paused, let exactly one more batch run."""
        with self._wake:
            self._single_steps += 1
            self._wake.notify_all()

    def stop(self, reason: str = "stopped") -> None:
        """Stop at the next batch boundary and save; `reason` is how the run's end is recorded
        ("stopped", or "pruned" when its sweep gave up on it)."""
        with self._wake:
            if not self._stop:
                self.stop_reason = reason
            self._stop = True
            self._wake.notify_all()

    def apply(self, **changes: Any) -> None:
        """Queue hyperparameter changes; only those in LIVE_FIELDS can change mid-run."""
        check_live(changes)
        with self._wake:
            self._updates.update(changes)
            self._wake.notify_all()

    def switch_device(self, device: str) -> None:
        with self._wake:
            self._device = device
            self._wake.notify_all()

    def _queue(self, query: Query, replaces: str | None = None) -> None:
        """Queue a query; one of the same kind still waiting whose request starts with `replaces` is dropped.

        While someone types, only their newest query matters; another asker's stay queued.
        """
        with self._wake:
            if replaces is not None:
                self._queries = [q for q in self._queries if not (
                    type(q) is type(query) and q.request.startswith(replaces))]
            self._queries.append(query)
            self._wake.notify_all()

    def request_sample(self, prime: str = "", temperature: float = 0.8, length: int = 300,
                       top_k: int = 0, request: str = "") -> None:
        self._queue(SampleRequest(prime, temperature, length, top_k, request))

    def request_classify(self, names: list[str], top_k: int = 5, request: str = "",
                         replaces: str | None = None) -> None:
        self._queue(ClassifyRequest(tuple(names), top_k, request), replaces)

    def request_inspect(self, text: str, units: list[tuple[int, int]], request: str = "",
                        replaces: str | None = None) -> None:
        self._queue(InspectRequest(text, tuple(tuple(u) for u in units), request), replaces)

    def request_check(self, request: str = "") -> None:
        self._queue(CheckRequest(request))

    def request_evaluate(self, full: bool = False) -> None:
        self._queue(EvaluateRequest(full))

    # -- what the trainer reads -----------------------------------------------------------------
    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def stopped(self) -> bool:
        return self._stop

    def take_updates(self) -> dict[str, Any]:
        with self._lock:
            out, self._updates = self._updates, {}
            return out

    def take_device(self) -> str | None:
        with self._lock:
            out, self._device = self._device, None
            return out

    def take_queries(self) -> list[Query]:
        with self._lock:
            out, self._queries = self._queries, []
            return out

    def take_single_step(self) -> bool:
        with self._lock:
            if self._single_steps:
                self._single_steps -= 1
                return True
            return False

    def wait(self, timeout: float) -> None:
        """Sleep until any request arrives or `timeout` passes (used while paused)."""
        with self._wake:
            if not (self._stop or not self._paused or self._single_steps or self._updates
                    or self._device or self._queries):
                self._wake.wait(timeout)
