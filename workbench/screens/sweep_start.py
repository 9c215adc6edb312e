"""Dialogs around sweeps: what a new sweep runs (trials, at a time, pruner), and which sweep to open."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList, Select
from textual.widgets.option_list import Option

from rnn_engine.sweep.listing import SweepInfo


@dataclass(frozen=True)
class SweepPlan:
    """How a sweep started from the app runs."""

    study: str
    trials: int
    parallel: int
    pruner: str


class SweepStartScreen(ModalScreen[SweepPlan | None]):
    """The study's name, its total of trials, how many train at a time, and the pruner; Enter starts."""

    BINDINGS = [("escape", "cancel", "Cancel")]
    DEFAULT_CSS = """
    SweepStartScreen { align: center middle; }
    SweepStartScreen > Vertical { width: 76; max-width: 100%; height: auto; border: thick $primary;
                                  background: $surface; padding: 1 2; }
    SweepStartScreen #sw-intro { width: 100%; margin-bottom: 1; }
    SweepStartScreen #sw-error { width: 100%; }
    SweepStartScreen Horizontal { height: 1; margin-bottom: 1; }
    SweepStartScreen .sw-name { width: 14; }
    SweepStartScreen Input, SweepStartScreen Select { width: 30; }
    SweepStartScreen #sw-error { color: $error; }
    """

    def __init__(self, space: str) -> None:
        super().__init__()
        self.space = space

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"A sweep over {self.space}; every other setting as the form has it. Each trial is "
                        "a run of its own.", id="sw-intro")
            for label, widget in (
                    ("study", Input(f"sweep-{time.strftime('%m%d-%H%M%S')}", id="sw-study", compact=True)),
                    ("trials", Input("10", id="sw-trials", compact=True)),
                    ("at a time", Input("1", id="sw-parallel", compact=True)),
                    ("pruner", Select([("median", "median"), ("hyperband", "hyperband"), ("none", "none")],
                                      value="median", allow_blank=False, id="sw-pruner", compact=True))):
                with Horizontal():
                    yield Label(label, classes="sw-name")
                    yield widget
            yield Label("", id="sw-error")
            yield Label("Enter starts the sweep · Esc cancels")

    def on_mount(self) -> None:
        self.query_one("#sw-trials", Input).focus()

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        study = self.query_one("#sw-study", Input).value.strip()
        try:
            trials = int(self.query_one("#sw-trials", Input).value)
            parallel = int(self.query_one("#sw-parallel", Input).value)
        except ValueError:
            trials = parallel = 0
        if not re.fullmatch(r"[\w.-]+", study):
            self.query_one("#sw-error", Label).update("✗ study: letters, digits, '.', '-' and '_' only")
        elif trials < 1 or parallel < 1:
            self.query_one("#sw-error", Label).update("✗ trials and 'at a time' are whole numbers from 1")
        else:
            self.dismiss(SweepPlan(study, trials, parallel, str(self.query_one("#sw-pruner", Select).value)))

    def action_cancel(self) -> None:
        self.dismiss(None)


class SweepPicker(ModalScreen[SweepInfo | None]):
    """The sweeps of the runs directory, running ones first; Enter opens one."""

    BINDINGS = [("escape", "cancel", "Cancel")]
    DEFAULT_CSS = """
    SweepPicker { align: center middle; }
    SweepPicker > Vertical { width: 76; height: auto; max-height: 80%; border: thick $primary;
                             background: $surface; padding: 1 2; }
    SweepPicker OptionList { height: auto; max-height: 16; }
    """

    def __init__(self, sweeps: list[SweepInfo]) -> None:
        super().__init__()
        self.sweeps = sweeps

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Sweeps in this runs directory (Enter opens one, Esc cancels)")
            options = [Option(f"{s.study} · {s.state} · {s.metric} · {_trials(s.definition.get('trials'))}",
                              id=str(i)) for i, s in enumerate(self.sweeps)]
            yield OptionList(*options, id="sweep-list")

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self.sweeps[int(event.option.id or 0)])

    def action_cancel(self) -> None:
        self.dismiss(None)


def _trials(n: object) -> str:
    return "1 trial" if n == 1 else f"{n if n is not None else '?'} trials"
