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



RUN_HELP = "run directory, run id (or its start) under --runs-dir, 'latest', or a .pt checkpoint"


def add_run_argument(parser: argparse.ArgumentParser, dest: str = "run") -> None:
    """The RUN argument and --runs-dir, taken the same way by every command that reads a run's model."""
    parser.add_argument(dest, metavar="RUN", help=RUN_HELP)
    parser.add_argument("--runs-dir", default="runs", help="where runs are (default runs)")


def model_path(spec: str, runs_dir: str, command: str) -> str:
    """The checkpoint a RUN argument names (a run's last.pt), or a one-line error naming what was tried."""
    from pathlib import Path

    from ..rundir.layout import RunDir
    from ..rundir.runs import RunNotFound, resolve_model

    if Path(spec).is_file():
        return spec  # a checkpoint file, whatever its name (loading it says if it is none)
    try:
        found = resolve_model(spec, runs_dir)
    except RunNotFound as exc:
        raise CliError(f"{command}: {exc}") from None
    if found.suffix != ".pt":
        found = RunDir(found).last
        if not found.is_file():
            raise CliError(f"{command}: {found.parent} has no checkpoint ({found.name}) yet")
    return str(Path(found))
