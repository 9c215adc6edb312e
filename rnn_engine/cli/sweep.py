"""`workbench sweep`: many runs as one experiment, with Optuna: a space, trials, pruning, the best."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from ..sweep.heartbeat import GRACE_PERIOD, HEARTBEAT_INTERVAL
from .parsing import CliError
from .train import add_config_flags, config_from_args


def add_parser(sub: Any) -> None:
    s = sub.add_parser(
        "sweep", help="a hyperparameter search over runs with Optuna: trials, pruning, the best trial",
        description="Search the settings of a [space] table (TOML) with Optuna. Each trial is an ordinary "
                    "run (attach, runs, ctl work on it); the other flags fix every setting not swept. "
                    "Running the same command again continues the study; a larger --trials adds trials.")
    data = s.add_mutually_exclusive_group(required=True)
    data.add_argument("--corpus", help="train language models on this text file")
    data.add_argument("--names", help="train name classifiers on this directory of <Language>.txt files")
    s.add_argument("--space", required=True, metavar="FILE", help="a TOML file with a [space] table, e.g. "
                   "lr = { low = 1e-4, high = 1e-2, log = true } and cell = [\"gru\", \"lstm\"]")
    s.add_argument("--trials", type=int, default=10, metavar="N", help="the study's total number of trials "
                   "(default 10)")
    s.add_argument("--parallel", type=int, default=1, metavar="K", help="trials training at a time (default "
                   "1; on a CPU they share its cores)")
    s.add_argument("--study", metavar="NAME", help="the study's name (default: the space file's name)")
    s.add_argument("--storage", metavar="URL", help="where the study lives: a database URL shared by "
                   "sweeps on several machines (postgresql://user@host/db, after pip install "
                   "'rnn-workbench[postgres]'), or a journal file (default "
                   "runs/sweeps/<study>/study.journal)")
    s.add_argument("--sampler", choices=["tpe", "random"], default="tpe", help="how trials are chosen "
                   "(default tpe)")
    s.add_argument("--pruner", choices=["median", "hyperband", "none"], default="median",
                   help="how a poor trial is stopped early, from its evaluations (default median)")
    s.add_argument("--metric", choices=["val_loss", "accuracy"], help="what the study optimises: the "
                   "best validation loss (lower), or test accuracy (higher; name classifiers); default "
                   "val_loss for text, accuracy for names")
    s.add_argument("--heartbeat-interval", type=float, default=HEARTBEAT_INTERVAL, metavar="SECONDS",
                   help=f"how often this sweep tells the study its trials are alive (default "
                        f"{HEARTBEAT_INTERVAL:g})")
    s.add_argument("--grace-period", type=float, default=GRACE_PERIOD, metavar="SECONDS",
                   help="how long a trial may go without a heartbeat before another sweep fails it and "
                        f"runs it again (default {GRACE_PERIOD:g})")
    s.add_argument("--runs-dir", default="runs", help="where the trials' runs go (default runs)")
    s.add_argument("--json", action="store_true", help="print one JSON summary line at the end: study, "
                   "storage, trials by state and the best trial")
    s.add_argument("--encoding", default="utf-8", help="text encoding of the corpus (default utf-8)")
    s.add_argument("--dedupe", action="store_true", help="drop repeated (name, language) pairs (names)")
    add_config_flags(s, "charlm")
    s.set_defaults(func=sweep)


def sweep(args: argparse.Namespace, argv: list[str]) -> int:
    from ..sweep.coordinator import Sweep, SweepSettings
    from ..sweep.space import SpaceError, read_space
    from ..sweep.study import default_storage
    from ..training.distributed import cores

    task = "names" if args.names else "charlm"
    data = args.names or args.corpus
    if not Path(data).exists():
        raise CliError(f"sweep: {data}: no such file or directory")
    if task == "charlm" and Path(data).is_dir():
        raise CliError(f"sweep: --corpus {data}: is a directory, expected a text file")
    if task == "names" and not Path(data).is_dir():
        raise CliError(f"sweep: --names {data}: expected a directory of <Language>.txt files")
    if args.trials < 1 or args.parallel < 1:
        raise CliError("sweep: --trials and --parallel must be at least 1")
    if not 0 < args.heartbeat_interval < args.grace_period:
        raise CliError("sweep: --heartbeat-interval must be positive and shorter than --grace-period "
                       f"(got {args.heartbeat_interval:g} and {args.grace_period:g})")
    metric = args.metric or ("accuracy" if task == "names" else "val_loss")
    if metric == "accuracy" and task != "names":
        raise CliError("sweep: --metric accuracy is for name classifiers (--names DIR)")
    base = config_from_args(args, task, str(Path(data).resolve()))
    try:
        space = read_space(args.space, base)  # each value checked with the settings it goes with
    except SpaceError as exc:
        raise CliError(f"sweep: {exc}") from None
    study = args.study or Path(args.space).stem
    if not study or "/" in study:
        raise CliError(f"sweep: --study: {study!r} is not a name")
    storage = args.storage or default_storage(args.runs_dir, study)
    extra = ["--encoding", args.encoding] if task == "charlm" and args.encoding != "utf-8" else []
    settings = SweepSettings(study, storage, space, base, Path(args.runs_dir), args.trials, args.parallel,
                             args.sampler, args.pruner, base.seed, metric, extra, args.heartbeat_interval,
                             args.grace_period)
    # trials that train side by side share the cores rather than each taking them all
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, cores() // args.parallel)))
    say = (lambda line: print(line, file=sys.stderr, flush=True)) if args.json else print
    try:
        result = Sweep(settings, say).run()
    except ValueError as exc:
        raise CliError(f"sweep: {exc}") from None
    if args.json:
        print(json.dumps(result))
    else:
        print(describe(result))
    return 0


def describe(result: dict[str, Any]) -> str:
    t = result["trials"]
    lines = [f"study {result['study']} ({result['storage']}): {t['complete']} complete, "
             f"{t['pruned']} pruned, {t['failed']} failed, {t['running']} running"]
    best = result.get("best")
    if best:
        params = ", ".join(f"{k}={v}" for k, v in best["params"].items())
        lines.append(f"best: trial {best['number']}, {best['value']:.4f} ({params}); run {best['run_dir']}")
    return "\n".join(lines)
