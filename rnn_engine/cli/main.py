"""`workbench COMMAND`: the parser of every headless command, and one-line errors with exit status 2."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence

from ..config import ConfigError
from . import bench, check, export, inspect, runs, sweep, train, use
from .parsing import CliError, OneLineParser, say


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="workbench", description="RNN Workbench: train recurrent networks from "
                           "scratch. With no command, opens the terminal workbench.")
    sub = parser.add_subparsers(dest="command", parser_class=OneLineParser)
    train.add_parsers(sub)
    use.add_parsers(sub)
    a = sub.add_parser("attach", help="open the workbench on a run: its history, then live if it is")
    a.add_argument("run", help="run directory, run id (or its start) under --runs-dir, or 'latest'")
    a.add_argument("--runs-dir", default="runs", help="where runs are (default runs)")
    a.add_argument("--no-bell", action="store_true", help="no terminal bell with the notices of runs that "
                   "end, fail or pause by themselves (also: RNN_WORKBENCH_BELL=0)")
    a.set_defaults(func=_attach_here)
    runs.add_parsers(sub, OneLineParser)
    inspect.add_parser(sub)
    check.add_parser(sub)
    p = sub.add_parser("presets", help="the classic tutorials' models, with the figures the tutorials "
                       "reported")
    p.set_defaults(func=_presets)
    bench.add_parser(sub)
    export.add_parser(sub)
    sweep.add_parser(sub)
    return parser


def command_names() -> list[str]:
    """Every command the parser knows, in the order `workbench --help` lists them."""
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return list(sub.choices)


def main(argv: Sequence[str] | None = None) -> int:
    from ..errors import CheckpointError, DataError, DeviceError, DistributedError

    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
        if args.command is None:
            build_parser().print_help()
            return 0
        return args.func(args, argv)  # each command's parser names its own (set_defaults)
    except ConfigError as exc:
        flags = "; ".join(f"--{k.replace('_', '-')}: {v}" for k, v in exc.errors.items())
        say(f"workbench: invalid settings: {flags}")
        return 2
    except (CliError, DataError, CheckpointError, DeviceError) as exc:
        say(f"workbench: {exc}" if not str(exc).startswith("workbench") else str(exc))
        return 2
    except DistributedError as exc:
        print(f"workbench: {exc}", file=sys.stderr)  # every rank: each says what it saw
        return 1
    except KeyboardInterrupt:
        print("\nworkbench: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `workbench inspect ... | head`: the reader has what it wanted
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - so the exit flush does not fail again
        return 0


def _attach_here(args: argparse.Namespace, argv: list[str]) -> int:
    raise CliError("attach opens the workbench: run it as 'workbench attach RUN'")


def _presets(args: argparse.Namespace, argv: list[str]) -> int:
    from ..training.presets import describe_presets

    print(describe_presets())
    return 0
