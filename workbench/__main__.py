"""`workbench`: with no command, the TUI; with train/train-names/sample/classify, the headless CLI."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from pathlib import Path

from rnn_engine.cli import CliError, OneLineParser
from rnn_engine.cli import main as cli_main
from rnn_engine.config import ConfigError, default_config

COMMANDS = {"train", "train-names", "sample", "classify", "bench", "-h", "--help"}


def tui_parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="workbench",
        description="Open the RNN Workbench TUI. Headless commands: workbench {train,train-names,"
                    "sample,classify,bench} --help.")
    data = p.add_mutually_exclusive_group()
    data.add_argument("--corpus", help="text file for the char language model (default: bundled plays)")
    data.add_argument("--names", help="directory of <Language>.txt files for the name classifier")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N, mps or auto")
    p.add_argument("--runs-dir", default="runs", help="where runs are saved and listed")
    return p


def exit_when_saved(app, code: int, limit: float = 600.0) -> None:
    """Leave once the training worker has saved, even if the terminal is gone.

    With its terminal closed, Textual's shutdown can block writing to it; the run's checkpoint
    and event log are what matter, so wait for the worker and then end the process.
    """
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        worker = app.worker
        if worker is None or worker.is_finished:
            break
        time.sleep(0.1)
    time.sleep(2.0)  # let a normal shutdown finish first when it can
    os._exit(code)


def run_tui(argv: list[str]) -> int:
    from .app import make_app
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
    app = make_app(config, args.runs_dir)

    def stop_and_exit(signum, frame) -> None:
        # SSH dropped or the process was asked to end: stop at a batch boundary and save
        if app.controls is not None:
            app.controls.stop()
        threading.Thread(target=exit_when_saved, args=(app, 128 + signum), daemon=True).start()
        app.call_later(app.exit)

    for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if sig is not None:
            signal.signal(sig, stop_and_exit)
    app.run()
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in COMMANDS:
        return cli_main(argv)
    if argv and not argv[0].startswith("-"):
        print(f"workbench: unknown command {argv[0]!r} (commands: train, train-names, sample, "
              "classify, bench; no command opens the TUI)", file=sys.stderr)
        return 2
    try:
        return run_tui(argv)
    except CliError as exc:
        print(exc, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
