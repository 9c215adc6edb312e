"""Questions to an ended run's saved model, answered in worker threads and posted back as messages.

A live run answers through its control endpoint (the app sends); an ended one is asked here: the
model is opened once from `last.pt` (saved_model.py) and each answer comes back to `to` — the
workspace screen, whose handlers show it — as one message class per kind of result.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from textual.dom import DOMNode
from textual.message import Message

from rnn_engine.events import Sampled

from .messages import (
    CheckReported,
    InsideFailed,
    InsideTextRead,
    InspectionMade,
    SavedModelClassified,
    SavedModelSampled,
    WorkFailed,
)
from .saved_model import SavedModels


class ModelAnswers:
    """Sampling, classifying, inspecting and checking on saved models, off the app's thread."""

    def __init__(self, to: DOMNode) -> None:
        self._to = to
        self._saved = SavedModels()

    def sample(self, run_dir: Path, prime: str, length: int, temperature: float, top_k: int) -> None:
        def work() -> Message:
            text = self._saved.sample(run_dir, prime, length, temperature, top_k)
            return SavedModelSampled(Sampled(-1, text, temperature, prime))
        self._run(work, "query", WorkFailed)

    def classify(self, run_dir: Path, name: str) -> None:
        self._run(lambda: SavedModelClassified(name, self._saved.classify(run_dir, name)), "query",
                  WorkFailed)

    def inspect(self, run_dir: Path, text: str, units: list[tuple[int, int]]) -> None:
        self._run(lambda: InspectionMade(self._saved.inspect(run_dir, text, units)), "inside",
                  lambda error: InsideFailed(f"cannot open the saved model: {error}"))

    def validation_text(self, data: Path, units: list[tuple[int, int]]) -> None:
        self._run(lambda: InsideTextRead(self._saved.validation_excerpt(data), units), "inside-text",
                  lambda error: InsideFailed(f"no validation excerpt: {error}"))

    def check(self, run_dir: Path) -> None:
        # the check reports its own errors in its report
        self._run(lambda: CheckReported(self._saved.check(run_dir)), "check", WorkFailed)

    def _run(self, work: Callable[[], Message], group: str, failed: Callable[[str], Message]) -> None:
        """`work` in a thread of its own (the newest of its group wins); what it finds is posted."""
        def job() -> None:
            try:
                message = work()
            except (ValueError, OSError) as exc:  # a damaged checkpoint, an unreadable corpus
                message = failed(str(exc))
            self._to.post_message(message)
        self._to.run_worker(job, thread=True, exclusive=True, exit_on_error=False, group=group)
