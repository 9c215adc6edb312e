"""`workbench`: with no command or `attach`, the TUI; with any other command, the headless CLI."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from pathlib import Path

from rnn_engine.cli.main import build_parser, command_names
from rnn_engine.cli.main import main as cli_main
from rnn_engine.cli.parsing import CliError, OneLineParser
from rnn_engine.config import ConfigError, default_config


def tui_parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="workbench",
        description="Open the RNN Workbench TUI. Other commands: workbench --help lists them, and "
                    "workbench COMMAND --help says what each takes.")
    data = p.add_mutually_exclusive_group()
    data.add_argument("--corpus", help="text file for the char language model (default: bundled plays)")
    data.add_argument("--names", help="directory of <Language>.txt files for the name classifier")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N, mps or auto")
    p.add_argument("--runs-dir", default="runs", help="where runs are saved and listed")
    p.add_argument("--no-bell", action="store_true", help="no terminal bell with the notices of runs that "
                   "end, fail or pause by themselves (also: RNN_WORKBENCH_BELL=0)")
    return p


def _exit_on_signal(app) -> None:
    """Close the app on SIGTERM or SIGHUP; the runs it shows are processes of their own and go on.

    With its terminal gone, Textual's shutdown can block writing to it, so the process ends
    by itself shortly after asking the app to close.
    """
    def handler(signum, frame) -> None:
        app.call_later(app.exit)
        threading.Thread(target=lambda: (time.sleep(3.0), os._exit(128 + signum)), daemon=True).start()

    for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if sig is not None:
            signal.signal(sig, handler)


def run_tui(config, runs_dir: str, attach: Path | None = None, no_bell: bool = False) -> int:
    from .app import make_app

    app = make_app(config, runs_dir, attach, bell=False if no_bell else None)
    _exit_on_signal(app)
    app.run()
    if app.farewell:
        print(app.farewell)
    return 0


def open_workbench(argv: list[str]) -> int:
    from .paths import default_data

    args = tui_parser().parse_args(argv)
    task = "names" if args.names else "charlm"
    data = args.names or args.corpus or str(default_data(task))
    if not Path(data).exists():
        print(f"workbench: {data}: no such file or directory", file=sys.stderr)
        return 2
    config = default_config(task, data=data, device=args.device)
    if config.validate():
        print(f"workbench: {ConfigError(config.validate())}", file=sys.stderr)
        return 2
    return run_tui(config, args.runs_dir, no_bell=args.no_bell)


def attach(argv: list[str]) -> int:
    from rnn_engine.rundir.runs import RunNotFound, resolve_run

    from .paths import default_data

    args = build_parser().parse_args(["attach", *argv])
    try:
        run_dir = resolve_run(args.run, args.runs_dir)
    except RunNotFound as exc:
        print(f"workbench: attach: {exc}", file=sys.stderr)
        return 2
    config = default_config("charlm", data=str(default_data("charlm")))
    return run_tui(config, args.runs_dir, attach=run_dir, no_bell=args.no_bell)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] == "attach":
            return attach(argv[1:])
        commands = command_names()
        if argv and argv[0] in (*commands, "-h", "--help"):
            return cli_main(argv)
        if argv and not argv[0].startswith("-"):
            print(f"workbench: unknown command {argv[0]!r} (commands: {', '.join(commands)}; no command "
                  "opens the TUI)", file=sys.stderr)
            return 2
        return open_workbench(argv)
    except CliError as exc:
        print(exc, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
