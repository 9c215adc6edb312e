"""Hyperparameter form: one row per RunConfig field, with its error shown beside it.

In sweep mode each row also takes what to sweep the setting over (`1e-4..1e-2 log`, `gru | lstm`):
the form then reads as a sweep's fixed settings and its search space.
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Input, Label, Select, Static

from rnn_engine.config import (
    COMMAND_FIELDS,
    LIVE_FIELDS,
    ConfigError,
    RunConfig,
    cell_defaults,
    default_config,
    field_info,
    parse_value,
)
from rnn_engine.sweep.space import Space, SpaceError, parse_field_text, parse_space
from rnn_engine.training.presets import PresetError, apply_preset

HIDDEN = {"dtype"}  # float64 is for the numerics tests, not for training from the UI


class HyperparameterForm(VerticalScroll):
    """Edits a RunConfig; `read()` returns the parsed config or raises ConfigError by field."""

    DEFAULT_CSS = """
    HyperparameterForm { padding: 1 1; }
    HyperparameterForm .hp-row { height: auto; margin-bottom: 1; }
    HyperparameterForm .hp-name { width: 16; content-align: right middle; padding-right: 1; }
    HyperparameterForm Input, HyperparameterForm Select { width: 44; }
    HyperparameterForm .hp-note { width: 1fr; height: auto; padding-left: 2; color: $text-muted; }
    HyperparameterForm .hp-note.-error { color: $error; text-style: bold; }
    HyperparameterForm .-invalid { background: $error 30%; }
    HyperparameterForm .hp-sweep { width: 28; display: none; }
    HyperparameterForm.-sweeping .hp-sweep { display: block; }
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
                if name not in COMMAND_FIELDS:
                    yield Input("", id=f"sw-{name}", placeholder="sweep: a..b [log] | x y", compact=True,
                                classes="hp-sweep")
                else:  # holds the sweep column's place, so every row has the same columns
                    yield Static("", classes="hp-sweep")
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

    @property
    def sweeping(self) -> bool:
        return self.has_class("-sweeping")

    def set_sweeping(self, on: bool) -> None:
        """Show or hide the sweep column beside the fields."""
        self.set_class(on, "-sweeping")

    def sweep_texts(self) -> dict[str, str]:
        """What the sweep column says, for the settings where it says something."""
        out = {}
        for widget in self.query(".hp-sweep").results(Input):
            text = str(widget.value).strip()
            if text:
                out[(widget.id or "").removeprefix("sw-")] = text
        return out

    def read_space(self, base: RunConfig) -> Space:
        """The sweep column as a search space checked with `base`; shows and raises errors by field."""
        table, errors = {}, {}
        for name, text in self.sweep_texts().items():
            try:
                table[name] = parse_field_text(name, self.kinds[name], text)
                parse_space({name: table[name]}, base)
            except SpaceError as exc:
                errors[name] = str(exc).split(": ", 2)[-1]
        if errors:
            self.show_errors(errors)
            raise ConfigError(errors)
        return parse_space(table, base)

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

    @on(Select.Changed, "#hp-cell")
    def _cell_chosen(self, event: Select.Changed) -> None:
        # a field still at the last cell's default takes the new cell's (minGRU: no dropout); a value
        # the user typed stays
        task = str(self.query_one("#hp-task", Select).value)
        before = default_config(task, cell=self.config.cell)
        after = default_config(task, cell=str(event.value))
        for name in set(cell_defaults(task, self.config.cell)) | set(cell_defaults(task, str(event.value))):
            field = self.query_one(f"#hp-{name}", Input)
            if field.value == str(getattr(before, name)):
                field.value = str(getattr(after, name))
        self.config = self.config.updated(cell=str(event.value))

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

    @on(Input.Changed, ".hp-sweep")
    def _check_sweep(self, event: Input.Changed) -> None:
        # what to sweep a setting over, checked as it is typed: the error goes beside the field
        event.stop()
        name = (event.input.id or "").removeprefix("sw-")
        error = ""
        if event.value.strip():
            try:
                parse_space({name: parse_field_text(name, self.kinds[name], event.value)}, self.config)
            except SpaceError as exc:
                error = str(exc).split(": ", 2)[-1]
        note = self.query_one(f"#note-{name}", Static)
        note.update(f"✗ {error}" if error else self.helps[name])
        note.set_class(bool(error), "-error")
        event.input.set_class(bool(error), "-invalid")

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
