"""A scrolling log of rich text that wraps at the width it is shown with, even if written while hidden."""

from __future__ import annotations

from rich.console import Group
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static


class TextLog(VerticalScroll):
    """Keeps the last `max_entries` entries; follows the end unless the user scrolled up.

    RichLog wraps each line once, at the width it has when written; lines written while their tab
    is hidden come out a few columns wide. A Static re-wraps on every render instead.
    """

    DEFAULT_CSS = """
    TextLog { height: 1fr; }
    TextLog > Static { width: 1fr; height: auto; }
    """

    def __init__(self, max_entries: int = 300, **kw) -> None:
        super().__init__(**kw)
        self.max_entries = max_entries
        self.entries: list[Text] = []

    def compose(self) -> ComposeResult:
        yield Static("", classes="text-log-body")

    def add(self, *entries: Text | str) -> None:
        """Append entries (markup strings or Text); one redraw however many there are."""
        follow = self.scroll_y >= self.max_scroll_y - 1
        # only the last max_entries can show: a replay of thousands parses no more than that
        for entry in entries[-self.max_entries:]:
            self.entries.append(Text.from_markup(entry) if isinstance(entry, str) else entry)
        del self.entries[: -self.max_entries]
        self.query_one(".text-log-body", Static).update(Group(*self.entries))
        if follow:
            self.call_after_refresh(self.scroll_end, animate=False)

    def clear(self) -> None:
        self.entries.clear()
        self.query_one(".text-log-body", Static).update("")

    @property
    def plain(self) -> list[str]:
        return [e.plain for e in self.entries]
