"""MkDocs hook: the parts of the manual written from the code at build time, so they cannot drift.

`<!-- cli-reference -->` in a page becomes every command's `--help`, from the `workbench` parsers;
`<!-- key-table -->` becomes the app's keys, from the bindings of the app, its panes and screens.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

MARK = "<!-- cli-reference -->"
KEYS_MARK = "<!-- key-table -->"
KEY_NAMES = {"question_mark": "?", "left_square_bracket": "[", "right_square_bracket": "]", "left": "←",
             "right": "→", "up": "↑", "down": "↓", "space": "Space", "escape": "Esc", "enter": "Enter"}


def reference() -> str:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from rnn_engine.cli.main import build_parser
    from workbench.__main__ import tui_parser

    os.environ["COLUMNS"] = "100"  # argparse wraps help to the terminal; the page gets one width
    parser = build_parser()
    parser.prog = "workbench"
    sections = ["## workbench (the app)", "", "```text", tui_parser().format_help().rstrip(), "```", "",
                "## workbench COMMAND", "", "```text", parser.format_help().rstrip(), "```", ""]
    for action in parser._actions:  # argparse keeps the subcommands here, in the order they were added
        if not isinstance(action, argparse._SubParsersAction):
            continue
        for name, sub in action.choices.items():
            sections += [f"## workbench {name}", "", "```text", sub.format_help().rstrip(), "```", ""]
            for inner in sub._actions:  # ctl's own commands
                if isinstance(inner, argparse._SubParsersAction):
                    for inner_name, inner_sub in inner.choices.items():
                        sections += [f"### workbench {name} {inner_name}", "", "```text",
                                     inner_sub.format_help().rstrip(), "```", ""]
    return "\n".join(sections)


def _keys(spec: str) -> str:
    shown = []
    for key in spec.split(","):
        name = KEY_NAMES.get(key, key)
        shown.append(name.upper() if len(name) == 2 and name.startswith("f") else name.replace("ctrl+", "^"))
    return " / ".join(f"`{k}`" for k in shown)


def key_table() -> str:
    """Every key of the app and of its panes and screens, with what the command palette says of it."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from textual.binding import Binding

    from workbench.app import PALETTE, WorkbenchApp
    from workbench.screens.compare import CompareScreen
    from workbench.screens.sweep import SweepScreen
    from workbench.widgets.inside_view import InsideView
    from workbench.widgets.runs_list import RunsList

    helps = {method.removeprefix("action_"): text for _, _, text, method in PALETTE}
    rows = ["| where | keys | action |", "| --- | --- | --- |"]
    for where, owner in (("everywhere", WorkbenchApp), ("Runs tab", RunsList), ("Inside tab", InsideView),
                         ("compare screen", CompareScreen), ("sweep screen", SweepScreen)):
        for b in owner.BINDINGS:
            b = b if isinstance(b, Binding) else Binding(*b)
            if b.action in ("leave_field", "enter_field"):
                continue  # described below the table
            more = helps.get(b.action.split("(")[0], "")
            rows.append(f"| {where} | {_keys(b.key)} | {b.description}{': ' + more if more else ''} |")
    return "\n".join(rows)


def on_page_markdown(markdown: str, page: Any, **kwargs: Any) -> str:
    if MARK in markdown:
        markdown = markdown.replace(MARK, reference())
    if KEYS_MARK in markdown:
        markdown = markdown.replace(KEYS_MARK, key_table())
    return markdown
