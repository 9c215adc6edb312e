"""Classifier pane: type a surname, see the top-k languages with probability bars, and a confusion matrix."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Input, Static


class ClassifierQuery(Vertical):
    """The input posts `Input.Changed`; the app answers with `show_results`."""

    DEFAULT_CSS = """
    ClassifierQuery { height: 1fr; }
    ClassifierQuery #clf-input { width: 50; }
    ClassifierQuery #clf-results { height: auto; min-height: 7; padding: 1 0; }
    ClassifierQuery #clf-confusion { height: auto; }
    """

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.labels: list[str] = []

    def clear(self) -> None:
        self.labels = []
        self.query_one("#clf-results", Static).update("")
        self.query_one("#clf-confusion", Static).update("")

    def prompt(self, hint: str) -> None:
        """Say which model answers, unless a name is typed (its answer stays shown)."""
        if not self.query_one("#clf-input", Input).value.strip():
            self.query_one("#clf-results", Static).update(hint)

    def compose(self) -> ComposeResult:
        yield Static("Enter (or Tab) moves into the box: type a surname and the current model answers as you "
                     "type; Esc leaves it, and the digit keys switch tabs again.", id="clf-help")
        yield Input(placeholder="surname, e.g. Nakamura", id="clf-input")
        yield Static("no model yet: train the name classifier (t switches task) or open a run",
                     id="clf-results")
        yield Static("", id="clf-confusion")

    def show_results(self, name: str, results: list[tuple[str, float]]) -> None:
        table = Table.grid(padding=(0, 1))
        table.add_column(width=14)
        table.add_column(width=40)
        table.add_column(justify="right")
        for label, p in results:
            filled = round(40 * p)
            table.add_row(label, Text("█" * filled + "·" * (40 - filled), style="green"), f"{p:6.1%}")
        self.query_one("#clf-results", Static).update(table if results else f"{name!r}: nothing to classify")

    def show_message(self, text: str) -> None:
        self.query_one("#clf-results", Static).update(text)

    def show_confusion(self, labels: list[str], matrix: list[list[int]], epoch: int) -> None:
        if not matrix or len(labels) != len(matrix):
            return
        self.labels = list(labels)
        title = (f"confusion on the test split after epoch {epoch} (rows: true, columns: predicted; "
                 "acc: the share of each language's names it gets right)")
        table = Table(title=title,
                      show_lines=False, padding=(0, 0), title_justify="left")
        table.add_column("", no_wrap=True)
        short = [lab[:3] for lab in labels]
        for s in short:
            table.add_column(s, justify="right", width=4)
        table.add_column("acc", justify="right", width=6)
        for i, row in enumerate(matrix):
            total = sum(row) or 1
            cells = []
            for j, v in enumerate(row):
                style = "bold green" if i == j else ("red" if v / total > 0.1 else "dim")
                cells.append(Text(str(v) if v else "·", style=style))
            # per-class accuracy (recall): what balanced accuracy averages
            acc = row[i] / total if sum(row) else None
            shown = "—" if acc is None else f"{acc:.0%}"
            cells.append(Text(shown, style="bold" if acc and acc >= 0.5 else ""))
            table.add_row(labels[i][:10], *cells)
        self.query_one("#clf-confusion", Static).update(table)
