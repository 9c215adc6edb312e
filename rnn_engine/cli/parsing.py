"""What every command shares: one-line errors (exit status 2) and the parser that raises them."""

from __future__ import annotations

import argparse
import os
import sys
from typing import NoReturn


class CliError(Exception):
    """A one-line error for the user; exit status 2."""


class OneLineParser(argparse.ArgumentParser):
    """argparse that raises CliError with one line instead of printing usage and exiting."""

    def error(self, message: str) -> NoReturn:  # one line, no usage block
        raise CliError(f"{self.prog}: {message}")


def say(line: str) -> None:
    """An error line; in a torchrun job only rank 0's, since every rank meets the same bad input."""
    if os.environ.get("RANK", "0") == "0" or os.environ.get("WORLD_SIZE", "1") == "1":
        print(line, file=sys.stderr)


def fail(message: str) -> NoReturn:
    raise CliError(message)
