"""Asked on quit while the shown run is live: stop it and save, or leave it running."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label


class QuitScreen(ModalScreen[str | None]):
    """Returns 'stop', 'leave', or None (Esc: stay in the workbench)."""

    BINDINGS = [("escape", "choose('')", "Cancel"), ("s", "choose('stop')", "Stop and save"),
                ("l", "choose('leave')", "Leave running")]
    DEFAULT_CSS = """
    QuitScreen { align: center middle; }
    QuitScreen > Vertical { width: 84; max-width: 100%; height: auto; border: thick $primary;
                            background: $surface; padding: 1 2; }
    QuitScreen Label { width: 1fr; margin-bottom: 1; }
    QuitScreen Horizontal { height: 3; }
    QuitScreen Button { margin-right: 2; }
    """

    def __init__(self, run_id: str, started_here: bool, name: str = "") -> None:
        super().__init__()
        self.run_id = run_id
        self.name_to_attach = name or run_id
        self.started_here = started_here

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"Run {self.run_id} is still running.")
            yield Label("Stop it at the next batch and save a checkpoint, or leave it running in the "
                        f"background: it carries on without this window, and 'workbench attach "
                        f"{self.name_to_attach}' opens it again.")
            with Horizontal():
                # the default (what Enter takes) is the one drawn as primary
                yield Button("Stop and save (s)", id="quit-stop",
                             variant="primary" if self.started_here else "default")
                yield Button("Leave it running (l)", id="quit-leave",
                             variant="default" if self.started_here else "primary")
                yield Button("Cancel (Esc)", id="quit-cancel")

    def on_mount(self) -> None:
        # Enter takes the focused button: stopping is the default for a run this window started
        self.query_one("#quit-stop" if self.started_here else "#quit-leave", Button).focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.action_choose({"quit-stop": "stop", "quit-leave": "leave"}.get(event.button.id or "", ""))

    def action_choose(self, choice: str) -> None:
        self.dismiss(choice or None)
