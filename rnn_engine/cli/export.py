"""`workbench export`: runs as TensorBoard event files and as one CSV table."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .parsing import CliError


def add_parser(sub: Any) -> None:
    e = sub.add_parser("export", help="write runs' curves, samples and settings for TensorBoard or as CSV",
                       description="Export runs (ids, directories, 'latest', or a directory of runs) as "
                                   "TensorBoard event files (one directory per run: tensorboard --logdir "
                                   "DIR) and/or one CSV table (a row per logged step or evaluation).")
    e.set_defaults(func=export)
    e.add_argument("runs", nargs="+", metavar="RUN", help="run directory, run id (or its start) under "
                   "--runs-dir, 'latest', or a directory whose subdirectories are runs")
    e.add_argument("--tensorboard", metavar="DIR", help="write TensorBoard event files under DIR/<run id>")
    e.add_argument("--csv", metavar="FILE", help="write one CSV table of all the runs to FILE")
    e.add_argument("--runs-dir", default="runs", help="where runs are (default runs)")


def export(args: argparse.Namespace, argv: list[str]) -> int:
    from ..export import read_history, write_csv, write_tensorboard
    from ..rundir.layout import RunDir
    from ..rundir.runs import RunNotFound, resolve_run, scan_runs

    if not args.tensorboard and not args.csv:
        raise CliError("export: say where: --tensorboard DIR and/or --csv FILE")
    dirs: list[Path] = []
    for spec in args.runs:
        path = Path(spec)
        if path.is_dir() and not RunDir(path).holds_run():
            inside = [Path(r.path) for r in reversed(scan_runs(path))]  # oldest first
            if not inside:
                raise CliError(f"export: {spec}: neither a run nor a directory of runs")
            dirs += inside
            continue
        try:
            dirs.append(resolve_run(spec, args.runs_dir))
        except RunNotFound as exc:
            raise CliError(f"export: {exc}") from None
    unique = list(dict.fromkeys(d.resolve() for d in dirs))
    histories = [read_history(d) for d in unique]
    if args.tensorboard:
        written = write_tensorboard(histories, args.tensorboard)
        print(f"{len(written)} run(s) written for TensorBoard under {args.tensorboard}: "
              f"tensorboard --logdir {args.tensorboard}")
    if args.csv:
        rows = write_csv(histories, args.csv)
        print(f"{rows} rows of {len(histories)} run(s) written to {args.csv}")
    return 0
