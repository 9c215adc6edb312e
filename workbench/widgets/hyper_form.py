"""Hyperparameter form: one row per RunConfig field, with its error shown beside it.

With the auto row at yes, the size fields may say `auto`: the run fits them to this machine's speed,
the corpus and the budget, and the note beside each shows what it chose. In sweep mode each row also
takes what to sweep the setting over (`1e-4..1e-2 log`, `gru | lstm`): the form then reads as a
sweep's fixed settings and its search space.
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Input, Label, Select, Static

from rnn_engine.config import (
    AUTO_FIELDS,
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
AUTO = "auto"  # what a size field says while the run is to fit it
AUTO_HELP = ("fit hidden_size, num_layers and dropout when the run starts: a GRU language model to this "
             "machine's speed, the corpus and the time budget, the classifier to its epochs; a value "
             "typed into one of them wins")


def auto_note(fixed: object, help_text: str) -> str:
    """The note beside a size field left to auto."""
    return f"auto: fitted when the run starts (fixed default {fixed}); {help_text}"


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
        # a size the config leaves at its default is the run's to fit
        defaults = default_config(self.config.task, cell=self.config.cell)
        for name, kind, _, _, choices in field_info():
            if name in HIDDEN:
                continue
            if name == AUTO_FIELDS[0]:
                yield from self._auto_row()
            value = getattr(self.config, name)
            if name in AUTO_FIELDS and value == getattr(defaults, name):
                value = AUTO
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
                note = self.helps[name]
                yield Static(auto_note(getattr(defaults, name), note) if value == AUTO else note,
                             id=f"note-{name}", classes="hp-note")

    def _auto_row(self) -> ComposeResult:
        with Horizontal(classes="hp-row"):
            yield Label("auto", classes="hp-name")
            yield Select([("yes", "yes"), ("no", "no")], value="yes", allow_blank=False, id="hp-auto",
                         compact=True)
            yield Static("", classes="hp-sweep")
            yield Static(AUTO_HELP, id="note-auto", classes="hp-note")

    @property
    def auto(self) -> bool:
        return self.query_one("#hp-auto", Select).value == "yes"

    def left_to_auto(self) -> tuple[str, ...] | None:
        """The size fields that say `auto` (for the run to fit), or None with the auto row at no."""
        if not self.auto:
            return None
        return tuple(n for n in AUTO_FIELDS if self._is_auto(n))

    def _is_auto(self, name: str) -> bool:
        return name in AUTO_FIELDS and str(self.query_one(f"#hp-{name}", Input).value).strip().lower() == AUTO

    def show_auto(self, record: dict) -> None:
        """What a run fitted (its RunStarted's `auto`), beside each field it set."""
        chosen = record.get("settings", {})
        if "metric" in record:  # the classifier: fitted to its epochs
            why = f"the best {record['metric'].replace('_', ' ')} measured for {record['epochs']} epochs"
        else:
            why = (f"~{record.get('expected_epochs', 0):.1f} epochs at "
                   f"{record.get('chars_per_second', 0):,} chars/s")
        for name in AUTO_FIELDS:
            if name in chosen and not self.error_text(name):
                note = self.query_one(f"#note-{name}", Static)
                note.update(f"auto chose {chosen[name]} for the last run ({why})")
        if "off" in record:
            self.query_one("#note-auto", Static).update(f"{AUTO_HELP}; last run: off ({record['off']})")

    def _fixed_defaults(self) -> RunConfig:
        """The defaults a field left to auto stands for: the form's task and cell's."""
        return default_config(str(self.query_one("#hp-task", Select).value), cell=self.config.cell)

    @on(Select.Changed, "#hp-auto")
    def _auto_switched(self, event: Select.Changed) -> None:
        # on: a size field still at its default says auto; off: one that says auto shows the default
        defaults = self._fixed_defaults()
        for name in AUTO_FIELDS:
            field = self.query_one(f"#hp-{name}", Input)
            if event.value == "yes" and field.value == str(getattr(defaults, name)):
                field.value = AUTO
            elif event.value == "no" and self._is_auto(name):
                field.value = str(getattr(defaults, name))
            self._note(name, "")

    def focus_first(self) -> None:
        self.query_one("#hp-task").focus()

    def set_config(self, config: RunConfig, keep_auto: bool = True) -> None:
        """Show `config`; with `keep_auto`, a size field that says auto goes on saying it."""
        self.config = config
        for name, kind, *_ in field_info():
            if name in HIDDEN or (keep_auto and self.auto and self._is_auto(name)):
                continue
            value = getattr(config, name)
            widget = self.query_one(f"#hp-{name}")
            if isinstance(widget, Select):
                widget.value = ("yes" if value else "no") if kind == "bool" else value
            else:
                widget.value = str(value)
        self.show_errors({})

    def values(self) -> dict[str, str]:
        """Each field's text; a size field left to auto is left out (the config keeps its default)."""
        out = {}
        for name, *_ in field_info():
            if name in HIDDEN or (self.auto and self._is_auto(name)):
                continue
            widget = self.query_one(f"#hp-{name}")
            out[name] = str(widget.value)
        return out

    def read(self) -> RunConfig:
        """The form as a validated RunConfig; shows and raises the errors otherwise.

        A field left to auto reads as its default: the run replaces it with what it fits.
        """
        try:
            config = RunConfig.from_strings(self.values(), self.config)
            left = self.left_to_auto() or ()
            if left:
                defaults = default_config(config.task, cell=config.cell)
                config = config.updated(**{n: getattr(defaults, n) for n in left}).checked()
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
        text = self.helps[name]
        if self.auto and self._is_auto(name):
            text = auto_note(getattr(self._fixed_defaults(), name), text)
        note.update(f"✗ {error}" if error else text)
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
        self.set_config(config, keep_auto=False)  # the preset's model, as it sets it

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
        if self.auto and self._is_auto(name):
            self._note(name, "")
            return
        error = ""
        try:
            value = parse_value(self.kinds[name], event.value)
            error = self.config.updated(**{name: value}).validate().get(name, "")
        except (ValueError, TypeError) as exc:
            error = str(exc)
        self._note(name, error)
