"""Runs table: every run in the runs directory with its state, kept current; Enter attaches."""

from __future__ import annotations

from pathlib import Path

from textual.message import Message
from textual.widgets import DataTable

from rnn_engine.rundir.runs import RunInfo, resources

from ..actions import RUNS_LIST, bindings


class RunsList(DataTable):
    """The rows of `workbench runs`; refreshing keeps the row under the cursor where it is.

    Space marks runs for comparison and c compares the marked ones (or the one under the cursor).
    """

    BINDINGS = bindings(RUNS_LIST)  # the keys, from the app's one table (actions.py)

    class CompareRequested(Message):
        """The runs to show side by side."""

        def __init__(self, runs: list[Path]) -> None:
            super().__init__()
            self.runs = runs

    def on_mount(self) -> None:
        self.cursor_type = "row"
        # what tells the runs apart first: an 80-column terminal cuts the table from the right
        self.add_columns("", "run", "state", "step", "best", "model", "shape", "task", "pid", "resources")
        self._rows: list[tuple[str, ...]] = []
        self.runs: list[RunInfo] = []
        self.marked: set[str] = set()

    def action_mark(self) -> None:
        path = self.selected()
        if path is None:
            return
        self.marked ^= {str(path)}
        self.show(self.runs)

    def action_compare(self) -> None:
        order = [r.path for r in self.runs if r.path in self.marked]
        if not order and self.selected() is not None:
            order = [str(self.selected())]
        if order:
            self.post_message(self.CompareRequested([Path(p) for p in order]))

    def show(self, runs: list[RunInfo]) -> None:
        self.runs = runs
        rows = [("✓" if r.path in self.marked else "", r.run_id, r.state, str(r.step), r.best, r.cell,
                 r.shape, r.task, str(r.pid) if r.pid else "", resources(r), r.path) for r in runs]
        if rows == self._rows:
            return
        selected = self.selected()
        self._rows = rows
        self.clear()
        for row in rows:
            self.add_row(*row[:-1], key=row[-1])
        if selected is not None:
            for i, row in enumerate(rows):
                if row[-1] == str(selected):
                    self.move_cursor(row=i, animate=False)
                    break

    def selected(self) -> Path | None:
        if self.row_count == 0:
            return None
        key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        return Path(str(key.value))
