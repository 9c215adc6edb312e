"""Classifier pane: type a surname, see the top-k languages with probability bars, and a confusion matrix."""

from __future__ import annotations

from rich import box
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Input, Static


class ClassifierQuery(VerticalScroll):
    """The input posts `Input.Changed`; the app answers with `show_results`. It scrolls (arrows,
    PgDn) where the confusion matrix is taller than the terminal."""

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
        self._confusion = (list(labels), matrix, epoch)
        self._draw_confusion()

    def on_resize(self) -> None:
        if getattr(self, "_confusion", None):
            self._draw_confusion()

    def _draw_confusion(self) -> None:
        labels, matrix, epoch = self._confusion
        width = self.size.width - 4  # the pane's padding and scroll bar
        # a column per language, as wide as its largest count: three letters where they fit, two on
        # an 80-column terminal, where each row names its language as far as the width allows
        digits = [max(len(str(row[j])) for row in matrix) for j in range(len(labels))]
        wide = sum(max(3, d) + 1 for d in digits) + 10 + 5
        narrow = 0 < width < wide
        codes = short_codes(labels, 2 if narrow else 3)
        columns = [max(len(c), d) + 1 for c, d in zip(codes, digits)]
        label_width = max(2, min(13, width - sum(columns) - 5)) if narrow else 10
        title = (f"confusion on the test split after epoch {epoch} (rows: true, columns: predicted; "
                 "acc: the share of each language's names it gets right)")
        # no rules between columns: 18 languages of counts then fit an 80-column terminal
        table = Table(title=title, box=box.SIMPLE_HEAD, show_lines=False, padding=(0, 0),
                      title_justify="left")
        table.add_column("", no_wrap=True, width=label_width)
        for code, w in zip(codes, columns):
            table.add_column(code, justify="right", width=w, no_wrap=True)
        table.add_column("acc", justify="right", width=5, no_wrap=True)
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
            name = f"{codes[i]} {labels[i]}" if narrow else labels[i]
            table.add_row(name[:label_width], *cells)
        self.query_one("#clf-confusion", Static).update(table)


def short_codes(labels: list[str], length: int) -> list[str]:
    """A distinct code of `length` letters per label: its first letters where they tell it apart
    (Chinese Chi, Czech Cze), else its first letter and the next that does (Polish Po, Portuguese Pr)."""
    codes: list[str] = []
    for label in labels:
        word = label.replace(" ", "") or "?"
        candidates = [word[:length]] + [word[0] + "".join(rest) for rest in _tails(word[1:], length - 1)]
        code = next((c for c in candidates if c not in codes), None)
        if code is None:  # every pick taken: number it
            code = f"{word[0]}{len(codes)}"[:length]
        codes.append(code)
    return codes


def _tails(letters: str, n: int) -> list[str]:
    """Ordered choices of n letters from `letters`, in reading order (n is 1 or 2 here)."""
    if n <= 0:
        return [""]
    return [letters[i] + t for i in range(len(letters)) for t in _tails(letters[i + 1:], n - 1)]
