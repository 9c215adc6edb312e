"""A sweep's search space: a `[space]` table of TOML over the run's settings, checked field by field.

    [space]
    lr = { low = 1e-4, high = 1e-2, log = true }   # a range (float or int, as the setting is)
    hidden_size = [256, 512]                        # a choice
    cell = ["gru", "lstm"]
    dropout = { low = 0.0, high = 0.5 }
    num_layers = { low = 1, high = 3, step = 1 }

Any setting a run takes can be swept, but the data (`--corpus`, `--names`) and the task. Every
bound and choice is checked as the run would check it, so a bad space fails before any trial
starts, with one line naming the field.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import COMMAND_FIELDS, RunConfig, field_info

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


class SpaceError(ValueError):
    """A search space that cannot be swept; the message names the field and what is wrong."""


@dataclass(frozen=True)
class Dimension:
    """One setting's range (`low`..`high`, optionally `log` or with a `step`) or its `choices`."""

    name: str
    kind: str  # the setting's type: int, float, str or bool
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()

    def suggest(self, trial: Any) -> Any:
        """This dimension's value for an Optuna trial."""
        if self.choices:
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high), step=int(self.step or 1),
                                     log=self.log)
        return trial.suggest_float(self.name, float(self.low), float(self.high), step=self.step, log=self.log)

    def describe(self) -> str:
        if self.choices:
            return " | ".join(map(str, self.choices))
        return f"{self.low:g} .. {self.high:g}" + (" (log)" if self.log else "") + \
            (f" step {self.step:g}" if self.step else "")


@dataclass(frozen=True)
class Space:
    """The dimensions of a sweep, in the order they were written."""

    dimensions: tuple[Dimension, ...]

    def suggest(self, trial: Any) -> dict[str, Any]:
        return {d.name: d.suggest(trial) for d in self.dimensions}

    def to_toml(self) -> str:
        """The space written back as the `[space]` table it came from (for a sweep started from the app)."""
        lines = ["[space]"]
        for d in self.dimensions:
            if d.choices:
                lines.append(f"{d.name} = [{', '.join(_toml_value(c) for c in d.choices)}]")
            else:
                parts = [f"low = {_toml_value(d.low)}", f"high = {_toml_value(d.high)}"]
                if d.log:
                    parts.append("log = true")
                if d.step:
                    parts.append(f"step = {_toml_value(d.step)}")
                lines.append(f"{d.name} = {{ {', '.join(parts)} }}")
        return "\n".join(lines) + "\n"


def parse_field_text(name: str, kind: str, text: str) -> list[Any] | dict[str, Any]:
    """What a person types beside a setting to sweep it, as the `[space]` entry it stands for.

    `1e-4..1e-2 log` and `64..512 step 64` are ranges; `gru | lstm`, `256, 512` or `yes no` are
    choices. SpaceError names the field where the text is neither.
    """
    text = text.strip()
    if ".." in text:
        low, _, rest = text.partition("..")
        words = rest.split()
        if not low.strip() or not words:
            raise SpaceError(f"space: {name}: write a range as LOW..HIGH (optionally log, or step S)")
        spec: dict[str, Any] = {"low": _number(name, low), "high": _number(name, words[0])}
        extra = words[1:]
        while extra:
            word = extra.pop(0)
            if word == "log":
                spec["log"] = True
            elif word == "step" and extra:
                spec["step"] = _number(name, extra.pop(0))
            else:
                raise SpaceError(f"space: {name}: after the range comes log or step S, not {word!r}")
        return spec
    items = [t for t in text.replace("|", " ").replace(",", " ").split() if t]
    if not items:
        raise SpaceError(f"space: {name}: nothing to sweep")
    if kind == "bool":
        flags = {"yes": True, "true": True, "1": True, "no": False, "false": False, "0": False}
        if any(t.lower() not in flags for t in items):
            raise SpaceError(f"space: {name}: the choices are yes and no")
        return [flags[t.lower()] for t in items]
    if kind in ("int", "float"):
        return [_number(name, t) for t in items]
    return items


def _number(name: str, text: str) -> int | float:
    try:
        value = float(text)
    except ValueError:
        raise SpaceError(f"space: {name}: {text.strip()!r} is not a number") from None
    return int(value) if value.is_integer() and "." not in text and "e" not in text.lower() else value


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)


def read_space(path: str | Path, base: RunConfig | None = None) -> Space:
    """The `[space]` table of a TOML file, checked with the sweep's other settings `base`.

    SpaceError (naming the file) when it cannot be read, or the field, when it cannot be swept.
    """
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise SpaceError(f"{path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SpaceError(f"{path}: not valid TOML ({exc})") from None
    table = data.get("space")
    if not isinstance(table, dict) or not table:
        raise SpaceError(f"{path}: no [space] table with at least one setting to sweep")
    return parse_space(table, base)


def parse_space(table: dict[str, Any], base: RunConfig | None = None) -> Space:
    """Check every entry of a `[space]` table against the settings a run takes."""
    kinds = {name: (kind, choices) for name, kind, _, _, choices in field_info()}
    base = base or RunConfig(data="x")
    dims = []
    for name, spec in table.items():
        if name not in kinds:
            raise SpaceError(f"space: {name}: no such setting (workbench train --help lists them)")
        if name in COMMAND_FIELDS:
            raise SpaceError(f"space: {name}: the data and the task are the sweep's own, not swept")
        kind, _ = kinds[name]
        if isinstance(spec, list):
            dims.append(_choices(name, kind, spec, base))
        elif isinstance(spec, dict):
            dims.append(_range(name, kind, spec, base))
        else:
            raise SpaceError(f"space: {name}: give a list of choices or a table {{ low = ..., high = ... }}, "
                             f"not {spec!r}")
    return Space(tuple(dims))


def _check_value(name: str, value: Any, base: RunConfig) -> None:
    try:
        error = base.updated(**{name: value}).validate().get(name)
    except TypeError:
        error = "is not a value of the right type"
    if error:
        raise SpaceError(f"space: {name}: {value!r} cannot be used: {error}")


def _choices(name: str, kind: str, values: list[Any], base: RunConfig) -> Dimension:
    if not values:
        raise SpaceError(f"space: {name}: the list of choices is empty")
    wanted = {"int": int, "float": (int, float), "bool": bool, "str": str}[kind]
    out = []
    for v in values:
        if not isinstance(v, wanted) or (kind in ("int", "float") and isinstance(v, bool)):
            what = "a whole number" if kind == "int" else f"a {kind}"
            raise SpaceError(f"space: {name}: {v!r} is not {what}")
        v = float(v) if kind == "float" else v
        _check_value(name, v, base)
        out.append(v)
    if len(set(out)) != len(out):
        raise SpaceError(f"space: {name}: a choice is given twice")
    return Dimension(name, kind, choices=tuple(out))


def _range(name: str, kind: str, spec: dict[str, Any], base: RunConfig) -> Dimension:
    if kind not in ("int", "float"):
        raise SpaceError(f"space: {name}: a {kind} setting takes a list of choices, not a range")
    extra = sorted(set(spec) - {"low", "high", "log", "step"})
    if extra:
        raise SpaceError(f"space: {name}: unknown key {extra[0]!r}; a range has low, high, log and step")
    if "low" not in spec or "high" not in spec:
        raise SpaceError(f"space: {name}: a range needs both low and high")
    low, high, log, step = spec["low"], spec["high"], spec.get("log", False), spec.get("step")
    for label, v in (("low", low), ("high", high)) + ((("step", step),) if step is not None else ()):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise SpaceError(f"space: {name}: {label} must be a number, not {v!r}")
        if kind == "int" and v != int(v):
            raise SpaceError(f"space: {name}: {label} must be a whole number for this setting, not {v!r}")
    if not isinstance(log, bool):
        raise SpaceError(f"space: {name}: log must be true or false")
    if not low < high:
        raise SpaceError(f"space: {name}: the range is empty: low ({low}) must be below high ({high})")
    if log and low <= 0:
        raise SpaceError(f"space: {name}: a log range must start above 0, not at {low}")
    if step is not None and (step <= 0 or log):
        raise SpaceError(f"space: {name}: step must be above 0, and cannot go with log")
    cast = int if kind == "int" else float
    for v in (low, high):
        _check_value(name, cast(v), base)
    return Dimension(name, kind, cast(low), cast(high), log, cast(step) if step is not None else None)
