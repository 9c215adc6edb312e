"""Scrollable log of generated text, each entry headed by epoch or step and temperature."""

from __future__ import annotations

from rich.text import Text

from .text_log import TextLog


class SampleLog(TextLog):
    """Generated samples, newest at the bottom; scroll with the arrow keys when focused."""

    DEFAULT_CSS = """
    SampleLog { border: round $primary-darken-2; padding: 0 1; }
    """

    def __init__(self, **kw) -> None:
        super().__init__(max_entries=60, **kw)
        self.border_title = "generated text"

    def add_sample(self, heading: str, text: str) -> None:
        self.add_samples([(heading, text)])

    def add_samples(self, samples: list[tuple[str, str]]) -> None:
        """(heading, text) pairs, oldest first."""
        entries = []
        for heading, text in samples[-self.max_entries:]:
            entry = Text(heading + "\n", style="bold magenta")
            entry.append(text.rstrip() or "(empty)", style="default")
            entry.append("\n")
            entries.append(entry)
        self.add(*entries)
