"""MkDocs hook: the parts of the manual written from the code at build time, so they cannot drift.

`<!-- cli-reference -->` in a page becomes every command's `--help`, from the `workbench` parsers;
`<!-- key-table -->` becomes the app's keys, from its one table of actions (workbench/actions.py),
the same the bindings, the command palette and the help screen are made from.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

MARK = "<!-- cli-reference -->"
KEYS_MARK = "<!-- key-table -->"


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


def key_table() -> str:
    """Every key of the app, from its one table of actions (workbench/actions.py)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from workbench.actions import key_table as table

    return table()


def on_page_markdown(markdown: str, page: Any, **kwargs: Any) -> str:
    if MARK in markdown:
        markdown = markdown.replace(MARK, reference())
    if KEYS_MARK in markdown:
        markdown = markdown.replace(KEYS_MARK, key_table())
    return markdown
