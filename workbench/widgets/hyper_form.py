"""Hyperparameter form: one row per RunConfig field, with its error shown beside it."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Input, Label, Select, Static

from rnn_engine.config import LIVE_FIELDS, ConfigError, RunConfig, field_info, parse_value
from rnn_engine.training.presets import PresetError, apply_preset

HIDDEN = {"dtype"}  # float64 is for the numerics tests, not for training from the UI


class HyperparameterForm(VerticalScroll):
    """Edits a RunConfig; `read()` returns the parsed config or raises ConfigError by field."""

    DEFAULT_CSS = """
    HyperparameterForm { padding: 1 1; }
    HyperparameterForm .hp-row { height: 1; margin-bottom: 1; }
    HyperparameterForm .hp-name { width: 16; content-align: right middle; padding-right: 1; }
    HyperparameterForm Input, HyperparameterForm Select { width: 44; }
    HyperparameterForm .hp-note { width: 1fr; padding-left: 2; color: $text-muted; }
    HyperparameterForm .hp-note.-error { color: $error; text-style: bold; }
    HyperparameterForm .-invalid { background: $error 30%; }
    """

    def __init__(self, config: RunConfig, **kw) -> None:
        super().__init__(**kw)
        self.can_focus = False  # Tab goes straight to the fields
        self.config = config
        self.kinds = {name: kind for name, kind, *_ in field_info()}
        self.helps = {name: help_text + (" (live)" if name in LIVE_FIELDS else "")
                      for name, _, _, help_text, _ in field_info()}

    def compose(self) -> ComposeResult:
        for name, kind, _, _, choices in field_info():
            if name in HIDDEN:
                continue
            value = getattr(self.config, name)
            with Horizontal(classes="hp-row"):
                yield Label(name, classes="hp-name")
                if choices or kind == "bool":
                    options = ([(c or "(none)", c) for c in choices] if choices
                               else [("yes", "yes"), ("no", "no")])
                    current = value if choices else ("yes" if value else "no")
                    yield Select(options, value=current, allow_blank=False, id=f"hp-{name}", compact=True)
                else:
                    yield Input(str(value), id=f"hp-{name}", select_on_focus=True, compact=True)
                yield Static(self.helps[name], id=f"note-{name}", classes="hp-note")

    def focus_first(self) -> None:
        self.query_one("#hp-task").focus()

    def set_config(self, config: RunConfig) -> None:
        self.config = config
        for name, kind, *_ in field_info():
            if name in HIDDEN:
                continue
            value = getattr(config, name)
            widget = self.query_one(f"#hp-{name}")
            if isinstance(widget, Select):
                widget.value = ("yes" if value else "no") if kind == "bool" else value
            else:
                widget.value = str(value)
        self.show_errors({})

    def values(self) -> dict[str, str]:
        out = {}
        for name, *_ in field_info():
            if name in HIDDEN:
                continue
            widget = self.query_one(f"#hp-{name}")
            out[name] = str(widget.value)
        return out

    def read(self) -> RunConfig:
        """The form as a validated RunConfig; shows and raises the errors otherwise."""
        try:
            config = RunConfig.from_strings(self.values(), self.config)
        except ConfigError as exc:
            self.show_errors(exc.errors)
            raise
        self.show_errors({})
        return config

    def show_errors(self, errors: dict[str, str]) -> None:
        for name, *_ in field_info():
            if name not in HIDDEN:
                self._note(name, errors.get(name, ""))

    def error_text(self, name: str) -> str:
        """The error shown beside a field, or '' when it is valid."""
        note = self.query_one(f"#note-{name}", Static)
        return str(note.content) if note.has_class("-error") else ""

    def _note(self, name: str, error: str) -> None:
        # the note beside a field is its help text, replaced by the error while there is one
        note = self.query_one(f"#note-{name}", Static)
        note.update(f"✗ {error}" if error else self.helps[name])
        note.set_class(bool(error), "-error")
        self.query_one(f"#hp-{name}").set_class(bool(error), "-invalid")

    @on(Select.Changed, "#hp-preset")
    def _preset_chosen(self, event: Select.Changed) -> None:
        # a preset fills in its tutorial's settings; the fields stay editable afterwards
        name = str(event.value or "")
        if not name or name == self.config.preset:
            return
        task = str(self.query_one("#hp-task", Select).value)
        data = str(self.query_one("#hp-data", Input).value)
        try:
            config = apply_preset(self.config.updated(task=task, data=data), name)
        except PresetError as exc:
            self._note("preset", str(exc))
            return
        self.set_config(config)

    @on(Input.Changed)
    def _check_field(self, event: Input.Changed) -> None:
        # parse the one field as it is typed; the cross-field checks run on start
        name = (event.input.id or "").removeprefix("hp-")
        if name not in self.kinds:
            return
        error = ""
        try:
            value = parse_value(self.kinds[name], event.value)
            error = self.config.updated(**{name: value}).validate().get(name, "")
        except (ValueError, TypeError) as exc:
            error = str(exc)
        self._note(name, error)
