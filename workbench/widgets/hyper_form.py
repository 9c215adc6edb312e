"""Hyperparameter form: one row per RunConfig field, with its error shown beside it."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Input, Label, Select, Static

from rnn_engine.config import LIVE_FIELDS, ConfigError, RunConfig, field_info, parse_value

HIDDEN = {"dtype"}  # float64 is for the numerics tests, not for training from the UI


class HyperparameterForm(VerticalScroll):
    """Edits a RunConfig; `read()` returns the parsed config or raises ConfigError by field."""

    DEFAULT_CSS = """
    HyperparameterForm .hp-row { height: 3; }
    HyperparameterForm .hp-name { width: 16; content-align: right middle; height: 3; padding-right: 1; }
    HyperparameterForm Input, HyperparameterForm Select { width: 34; }
    HyperparameterForm .hp-error, HyperparameterForm .hp-help {
        width: 1fr; height: 3; content-align: left middle; padding-left: 1;
    }
    HyperparameterForm .hp-error { color: $error; }
    HyperparameterForm .hp-help { color: $text-muted; }
    HyperparameterForm .-invalid { border: tall $error; }
    """

    def __init__(self, config: RunConfig, **kw) -> None:
        super().__init__(**kw)
        self.config = config
        self.kinds = {name: kind for name, kind, *_ in field_info()}

    def compose(self) -> ComposeResult:
        for name, kind, _, help_text, choices in field_info():
            if name in HIDDEN:
                continue
            value = getattr(self.config, name)
            live = " (live)" if name in LIVE_FIELDS else ""
            with Horizontal(classes="hp-row"):
                yield Label(name, classes="hp-name")
                if choices or kind == "bool":
                    options = [(c, c) for c in choices] if choices else [("yes", "yes"), ("no", "no")]
                    current = value if choices else ("yes" if value else "no")
                    yield Select(options, value=current, allow_blank=False, id=f"hp-{name}")
                else:
                    yield Input(str(value), id=f"hp-{name}", select_on_focus=True)
                yield Static("", id=f"err-{name}", classes="hp-error")
                yield Static(help_text + live, id=f"help-{name}", classes="hp-help")

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
            if name in HIDDEN:
                continue
            message = errors.get(name, "")
            self.query_one(f"#err-{name}", Static).update(message)
            self.query_one(f"#help-{name}", Static).display = not message
            self.query_one(f"#hp-{name}").set_class(bool(message), "-invalid")

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
        self.query_one(f"#err-{name}", Static).update(error)
        self.query_one(f"#help-{name}", Static).display = not error
        event.input.set_class(bool(error), "-invalid")
