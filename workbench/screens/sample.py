"""Dialog to generate text now: temperature, top-k, priming text and length."""

from __future__ import annotations

from dataclasses import dataclass

from textual import on
from textual.app import ComposeResult
from textual.containers import Grid, Horizontal
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static


@dataclass(frozen=True)
class SampleSettings:
    prime: str
    temperature: float
    length: int
    top_k: int


class SampleScreen(ModalScreen[SampleSettings | None]):
    """Returns SampleSettings on Enter, None on Esc; bad numbers are shown and keep it open."""

    BINDINGS = [("escape", "cancel", "Cancel")]
    DEFAULT_CSS = """
    SampleScreen { align: center middle; }
    SampleScreen > Grid { grid-size: 2; grid-columns: 16 50; grid-rows: 3; width: 72; height: auto;
                          border: thick $primary; background: $surface; padding: 1 2; }
    SampleScreen Label { height: 3; content-align: right middle; padding-right: 1; }
    SampleScreen #sample-error { column-span: 2; color: $error; height: 2; }
    SampleScreen Horizontal { column-span: 2; height: 3; }
    """

    def __init__(self, temperature: float, top_k: int, length: int = 300, prime: str = "") -> None:
        super().__init__()
        self.defaults = (prime, temperature, length, top_k)

    def compose(self) -> ComposeResult:
        prime, temperature, length, top_k = self.defaults
        with Grid():
            yield Label("priming text")
            yield Input(prime, id="sample-prime", placeholder="e.g. ROMEO:")
            yield Label("temperature")
            yield Input(str(temperature), id="sample-temperature")
            yield Label("top-k (0 = all)")
            yield Input(str(top_k), id="sample-top-k")
            yield Label("length")
            yield Input(str(length), id="sample-length")
            yield Static("", id="sample-error")
            with Horizontal():
                yield Button("Generate", variant="primary", id="sample-go")
                yield Button("Cancel", id="sample-cancel")

    def on_mount(self) -> None:
        self.query_one("#sample-prime", Input).focus()

    @on(Input.Submitted)
    @on(Button.Pressed, "#sample-go")
    def _submit(self) -> None:
        err = self.query_one("#sample-error", Static)
        try:
            temperature = float(self.query_one("#sample-temperature", Input).value)
            top_k = int(self.query_one("#sample-top-k", Input).value)
            length = int(self.query_one("#sample-length", Input).value)
        except ValueError:
            err.update("temperature must be a number, top-k and length whole numbers")
            return
        if not (0 < temperature <= 100):
            err.update("temperature must be > 0 (and at most 100)")
            return
        if top_k < 0 or not (1 <= length <= 20000):
            err.update("top-k must be >= 0 and length between 1 and 20000")
            return
        self.dismiss(SampleSettings(self.query_one("#sample-prime", Input).value, temperature, length, top_k))

    @on(Button.Pressed, "#sample-cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
