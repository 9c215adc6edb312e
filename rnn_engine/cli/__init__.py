"""`workbench COMMAND`: one module per command family; each parses its arguments and prints.

What a command computes lives below, in the package it is about; a command module adds its
subparser, calls into the engine and prints the result, with one-line errors and exit status 2
for anything the user can fix (`parsing`). `main` builds the parser and dispatches.
"""

from __future__ import annotations

from .main import build_parser, main
from .parsing import CliError, OneLineParser

__all__ = ["CliError", "OneLineParser", "build_parser", "main"]
