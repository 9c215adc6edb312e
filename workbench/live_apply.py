"""What the form asks of a live run: the changes that apply now, and the fields that need a new run."""

from __future__ import annotations

from typing import Any

from rnn_engine.config import LIVE_FIELDS, ConfigError, RunConfig

NEXT_RUN_ONLY = ("epochs", "time_budget", "max_steps", "device")  # the budget and device of the next run


def live_changes(values: dict[str, str], base: RunConfig) -> tuple[dict[str, Any], list[str], dict[str, str]]:
    """(changes that apply now, fields that need a new run, errors by field) for the form's `values`.

    Each field is read on its own against the run's settings, so a value that cannot apply (a
    wrong one, or one of a setting fixed for the run) holds up nothing else; the budget and the
    device take effect with the next run and are not counted.
    """
    live: dict[str, Any] = {}
    rest: list[str] = []
    errors: dict[str, str] = {}
    for name, text in values.items():
        if name in NEXT_RUN_ONLY:
            continue
        try:
            value = getattr(RunConfig.from_strings({name: text}, base), name)
        except ConfigError as exc:
            errors.update(exc.errors)
            if name not in LIVE_FIELDS:
                rest.append(name)
            continue
        if value != getattr(base, name):
            if name in LIVE_FIELDS:
                live[name] = value
            else:
                rest.append(name)
    return live, rest, errors


def names_with_and(names: list[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
