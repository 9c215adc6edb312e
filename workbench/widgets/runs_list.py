"""Runs table: every run in the runs directory with its state, kept current; Enter attaches."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import DataTable

from rnn_engine.run_commands import resources
from rnn_engine.runs import RunInfo


class RunsList(DataTable):
    """The rows of `workbench runs`; refreshing keeps the row under the cursor where it is."""

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.add_columns("run", "task", "cell", "shape", "step", "best", "state", "pid", "resources")
        self._rows: list[tuple[str, ...]] = []
        self.runs: list[RunInfo] = []

    def show(self, runs: list[RunInfo]) -> None:
        self.runs = runs
        rows = [(r.run_id, r.task, r.cell, r.shape, str(r.step), r.best, r.state,
                 str(r.pid) if r.pid else "", resources(r), r.path) for r in runs]
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
