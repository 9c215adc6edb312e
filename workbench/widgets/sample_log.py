"""Scrollable log of generated text, each entry headed by epoch or step and temperature."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import RichLog


class SampleLog(RichLog):
    """Generated samples, newest at the bottom; scroll with the arrow keys when focused."""

    DEFAULT_CSS = """
    SampleLog { height: 1fr; border: round $primary-darken-2; }
    """

    def __init__(self, **kw) -> None:
        super().__init__(wrap=True, markup=False, highlight=False, max_lines=4000, **kw)
        self.entries = 0

    def add_sample(self, heading: str, text: str) -> None:
        self.entries += 1
        self.write(Text(heading, style="bold magenta"))
        self.write(Text(text.rstrip() or "(empty)"))
        self.write(Text(""))
