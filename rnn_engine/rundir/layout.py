"""A run directory's files: their names, here and nowhere else, and the run's settings read once.

    runs/<run-id>/
        config.json      the settings the run started with (and a sweep trial's tags)
        events.jsonl     everything the run reported, one event a line
        live.json        who runs it and whether it still does (liveness.py)
        last.pt, best.pt the latest checkpoint and the one with the best validation loss
        output.log       the process's own output, for a run started in the background
        trial_note.txt   what a sweep's study says of the run's trial, when a sweep fails it
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..config import RunConfig

CONFIG = "config.json"
EVENTS = "events.jsonl"
RECORD = "live.json"
LAST = "last.pt"
BEST = "best.pt"
OUTPUT = "output.log"
TRIAL_NOTE = "trial_note.txt"


class RunDirError(Exception):
    """A run directory whose settings cannot be read; the message names the file and the reason."""


class RunDir:
    """One run's directory: where each of its files is, and its settings (config.json), read once."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._settings: dict[str, Any] | None = None

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    @property
    def config_file(self) -> Path:
        return self.path / CONFIG

    @property
    def events(self) -> Path:
        return self.path / EVENTS

    @property
    def record(self) -> Path:
        return self.path / RECORD

    @property
    def last(self) -> Path:
        return self.path / LAST

    @property
    def best(self) -> Path:
        return self.path / BEST

    @property
    def output(self) -> Path:
        return self.path / OUTPUT

    @property
    def trial_note(self) -> Path:
        return self.path / TRIAL_NOTE

    def holds_run(self) -> bool:
        """Whether a run was started here (its settings were written)."""
        return self.config_file.is_file()

    def has_run_events(self) -> bool:
        """Whether a run has already logged here (a new run must not write over it)."""
        return self.events.exists()

    def settings_dict(self) -> dict[str, Any]:
        """config.json as written: the settings and the tags beside them; RunDirError if unreadable."""
        if self._settings is None:
            try:
                data = json.loads(self.config_file.read_text(encoding="utf-8"))
            except OSError as exc:
                raise RunDirError(f"{self.config_file}: cannot be read ({exc.strerror or exc})") from None
            except ValueError as exc:
                raise RunDirError(f"{self.config_file}: not JSON ({exc})") from None
            if not isinstance(data, dict):
                raise RunDirError(f"{self.config_file}: holds {type(data).__name__}, not the run's settings")
            self._settings = data
        return self._settings

    def settings(self) -> RunConfig:
        """The settings the run started with, as a RunConfig; RunDirError if they cannot be read."""
        try:
            return RunConfig.from_dict(self.settings_dict())
        except (TypeError, ValueError) as exc:
            raise RunDirError(f"{self.config_file}: not a run's settings ({exc})") from None
