"""`workbench train` and `train-names`: a run in this process, detached, or as torchrun ranks."""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import time
from typing import Any

from ..config import (
    COMMAND_FIELDS,
    ConfigError,
    RunConfig,
    check_world,
    default_config,
    describe_auto,
    field_info,
)
from ..events import EpochFinished, Event, RunPaused, StepFinished
from ..training.presets import PresetError, apply_preset
from .parsing import CliError

# seconds of training after which an auto-fitted run's own speed replaces the probe's in the speed cache
MEASURED_RUN = 30.0


def add_parsers(sub: Any) -> None:
    """The `train` and `train-names` subcommands, with a flag for every setting of the config."""
    t = sub.add_parser("train", help="train a character language model on a text file")
    t.add_argument("--corpus", help="any UTF-8 text file (with --resume: the run's own unless given)")
    t.add_argument("--encoding", default="utf-8", help="text encoding of the corpus (default utf-8)")
    t.add_argument("--errors", default="strict", choices=["strict", "replace", "ignore"],
                   help="what to do with undecodable bytes (default strict: stop with the byte offset)")
    _add_common(t)
    add_config_flags(t, "charlm")
    t.set_defaults(func=run)

    n = sub.add_parser("train-names", help="train the surname → language classifier")
    n.add_argument("--data", help="directory of <Language>.txt files, one name per line (with --resume: "
                   "the run's own unless given)")
    n.add_argument("--dedupe", action="store_true", help="drop repeated (name, language) pairs first")
    _add_common(n)
    add_config_flags(n, "names")
    n.set_defaults(func=run)


def run(args: argparse.Namespace, argv: list[str]) -> int:
    """Train as the command line asks: here, in the background (--detach) or on --nproc ranks."""
    task = "charlm" if args.command == "train" else "names"
    _check_run_id(args.run_id)
    if args.resume:
        from .resume import checkpoint_of

        args.resume = str(checkpoint_of(args.resume, args.runs_dir))
        # the checkpoint found now, for the processes this one starts (--detach, --nproc ranks):
        # by the time they look, 'latest' would name the new run itself
        argv = _resume_given(argv, args.resume)
    elif not _data_arg(args, task):
        flag = "--corpus FILE" if task == "charlm" else "--data DIR"
        raise CliError(f"{flag} is required, unless --resume RUN continues a run (which knows its data)")
    if args.detach:
        return _detach(args, argv, task)
    return _train(args, task, argv)

# shorter flag names people expect; the long form stays accepted
_ALIASES = {"num_layers": "--layers"}


def add_config_flags(p: argparse.ArgumentParser, task: str) -> None:
    defaults = default_config(task)
    for name, kind, _, help_text, choices in field_info():
        if name in COMMAND_FIELDS:
            continue
        flags = ["--" + name.replace("_", "-")]
        if name in _ALIASES and _ALIASES[name] not in flags:
            flags.insert(0, _ALIASES[name])
        default = getattr(defaults, name)
        help_text = help_text.replace("%", "%%")  # argparse formats help with %
        if kind == "bool":  # --flag alone says yes; --flag no also works
            p.add_argument(*flags, dest=name, default=None, nargs="?", const="yes", metavar="yes|no",
                           help=f"{help_text} (default {'yes' if default else 'no'})")
            continue
        p.add_argument(*flags, dest=name, default=None, metavar=kind.upper(), choices=None,
                       help=f"{help_text} (default {default}{'; ' + '|'.join(choices) if choices else ''})")


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON summary as the last line")
    p.add_argument("--no-auto", dest="auto", action="store_false", help="the fixed defaults for every "
                   "setting not given, instead of the ones fitted to this machine, corpus and budget")
    p.add_argument("--runs-dir", default="runs", help="where runs/<run-id>/ is written")
    p.add_argument("--resume", default=None, help="checkpoint or run directory to continue from")
    p.add_argument("--run-id", default=None, help="name of the run's directory (default: time, task, "
                   "cell and a random suffix)")
    p.add_argument("--detach", action="store_true", help="train in the background, in a session of its "
                   "own; returns once training has started and prints how to attach")
    p.add_argument("--nproc", type=int, default=1, metavar="N", help="train data-parallel on N local ranks "
                   "(torch.distributed's launcher, DDP; gloo on the CPU, one GPU each on CUDA)")
    p.add_argument("--max-restarts", type=int, default=0, metavar="K", help="with --nproc: restart "
                   "the ranks from the last checkpoint up to K times after a failure (default 0)")
    trial = p.add_argument_group("as a trial of a sweep (workbench sweep sets these)")
    trial.add_argument("--sweep-storage", metavar="URL", help="the study's storage")
    trial.add_argument("--sweep-study", metavar="NAME", help="the study")
    trial.add_argument("--sweep-trial", type=int, metavar="N", help="this run is trial N: it reports each "
                       "evaluation to the study and stops, saving, when the pruner says so")
    trial.add_argument("--sweep-metric", default="val_loss", choices=["val_loss", "accuracy"],
                       help="what the trial reports (default val_loss)")
    trial.add_argument("--sweep-pruner", default="median", choices=["median", "hyperband", "none"],
                       help="how the study prunes (default median)")


def _resume_given(argv: list[str], checkpoint: str) -> list[str]:
    """`argv` with its --resume naming `checkpoint`."""
    out = [a for a in argv if not a.startswith("--resume=")]
    if "--resume" in out:
        i = out.index("--resume")
        return out[:i] + ["--resume", checkpoint] + out[i + 2:]
    return out + ["--resume", checkpoint]


def _data_arg(args: argparse.Namespace, task: str) -> str | None:
    return args.corpus if task == "charlm" else args.data


def run_settings(args: argparse.Namespace, task: str) -> tuple[RunConfig, str]:
    """The run's settings from the flags, and with --resume where they came from ('' for a new run)."""
    if not args.resume:
        return config_from_args(args, task, _data_arg(args, task)), ""
    from pathlib import Path

    from .resume import resumed_settings

    data = _data_arg(args, task)
    resumed = resumed_settings(Path(args.resume), task, given_settings(args),
                               str(Path(data).resolve()) if data else None)
    args.resumed_checkpoint = resumed.checkpoint  # this process trains from it without reading it again
    return resumed.config, resumed.origin


def given_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The settings the command line names, as typed (a flag left out is None, not its default)."""
    return {name: getattr(args, name) for name, *_ in field_info()
            if name not in COMMAND_FIELDS and getattr(args, name, None) is not None}


def config_from_args(args: argparse.Namespace, task: str, data: str) -> RunConfig:
    values = given_settings(args)
    cell = {"cell": values["cell"]} if "cell" in values else {}  # the cell's own defaults; flags still win
    base = default_config(task, data=data, dedupe=bool(getattr(args, "dedupe", False)), **cell)
    if values.get("preset"):
        try:
            base = apply_preset(base, values.pop("preset"))
        except PresetError as exc:
            raise ConfigError({"preset": str(exc)}) from None
    return RunConfig.from_strings(values, only_named_limits(base, values))


def only_named_limits(base: RunConfig, values: dict[str, Any]) -> RunConfig:
    """`base` without the limits the flags leave out, when they name some: --epochs 3 alone means
    three epochs, not three epochs or the default time budget, whichever ends first."""
    named = {"epochs", "time_budget", "max_steps"} & set(values)
    if named and len(named & {"epochs", "time_budget"}) < 2:
        for other in {"epochs", "time_budget"} - named:
            base = base.updated(**{other: type(getattr(base, other))(0)})
    return base


class Progress:
    """A one-line progress bar with ETA on stderr, redrawn at most a few times a second."""

    def __init__(self, stream: Any = sys.stderr, width: int = 28) -> None:
        self.stream = stream
        self.width = width
        self.last = 0.0
        self.tty = stream.isatty()

    def __call__(self, event: Event) -> None:
        if isinstance(event, StepFinished):
            now = time.monotonic()
            if now - self.last < (0.2 if self.tty else 10.0):
                return
            self.last = now
            done = int(event.progress * self.width)
            eta = _clock(event.eta) if event.eta >= 0 else "--:--"
            line = (f"[{'#' * done}{'.' * (self.width - done)}] {event.progress:4.0%} step {event.step} "
                    f"epoch {event.epoch} loss {event.loss:.3f} |g| {event.grad_norm:.2f} "
                    f"{event.items_per_s:,.0f}/s ETA {eta}")
            self.stream.write(("\r" + line + "\x1b[K") if self.tty else line + "\n")
            self.stream.flush()
        elif isinstance(event, EpochFinished):
            self._newline()
            acc = f" accuracy {event.val_accuracy:.1%}" if event.val_accuracy is not None else ""
            self.stream.write(f"epoch {event.epoch}: train {event.train_loss:.4f} "
                              f"val {event.val_loss:.4f}{acc}\n")
            if event.sample:
                self.stream.write(_indent(event.sample[:400]) + "\n")
        elif isinstance(event, RunPaused):
            self._newline()
            self.stream.write(f"paused: {event.reason}\n")

    def _newline(self) -> None:
        if self.tty and self.last:
            self.stream.write("\n")
            self.last = 0.0


def _fan_out(sinks: list[Any]) -> Any:
    """One sink for the trainer that hands each event to every one of `sinks` (None for none)."""
    if not sinks:
        return None
    if len(sinks) == 1:
        return sinks[0]
    return lambda event: [sink(event) for sink in sinks]


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 \
        else f"{seconds // 60}:{seconds % 60:02d}"


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


def _install_stop_handlers(controls: Any) -> None:
    """SIGINT, SIGTERM and SIGHUP stop at the next batch boundary and save; a second SIGINT aborts.

    A signal the process was started ignoring (SIGHUP under nohup) stays ignored.
    """
    def handler(signum: int, frame: Any) -> None:
        if controls.stopped and signum == signal.SIGINT:
            raise KeyboardInterrupt
        controls.stop()

    for sig in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if sig is not None and signal.getsignal(sig) is not signal.SIG_IGN:
            signal.signal(sig, handler)


def _check_run_id(run_id: str | None) -> None:
    if run_id is not None and (not run_id or run_id in (".", "..") or "/" in run_id or os.sep in run_id):
        raise CliError(f"--run-id: {run_id!r} is not a directory name")


def _detach(args: argparse.Namespace, argv: list[str], task: str) -> int:
    """Start this same command as a run of its own and return once it trains."""
    from pathlib import Path

    from ..rundir.launch import start_run, wait_started
    from ..rundir.layout import RunDir
    from ..rundir.runs import new_run_id, run_name

    config, _ = run_settings(args, task)
    run_id = args.run_id or new_run_id(config)
    run_dir = Path(args.runs_dir) / run_id
    if RunDir(run_dir).has_run_events():
        raise CliError(f"{run_dir}: already holds a run; give another --run-id")
    child = [a for a in argv if a != "--detach"]
    if args.run_id is None:
        child += ["--run-id", run_id]
    process = start_run([sys.executable, "-m", "workbench", *child], run_dir)
    print(f"run {run_id} starting (pid {process.pid}); its output goes to {RunDir(run_dir).output}",
          file=sys.stderr)
    error = wait_started(process, run_dir)
    if error:
        raise CliError(error.removeprefix("workbench: "))
    name = run_name(run_dir)
    listing = "workbench runs" + ("" if args.runs_dir == "runs" else f" --runs-dir {args.runs_dir}")
    print(f"run {run_id} is training in the background.\n"
          f"  watch and steer it: workbench attach {name}\n"
          f"  from a script:      workbench ctl {name} pause|resume|stop|apply lr=...\n"
          f"  all runs:           {listing}")
    return 0


def _train(args: argparse.Namespace, task: str, argv: list[str]) -> int:
    from ..training.distributed import launched

    config, args.origin = run_settings(args, task)
    if not launched():
        if args.nproc < 1 or args.max_restarts < 0:
            raise CliError("--nproc must be >= 1 and --max-restarts >= 0")
        if args.nproc > 1:
            return _launch_ranks(args, argv, config)
        return _train_rank(args, task, config, None)
    from ..training.distributed import Dist

    dist = Dist.start(config.device)
    finished = False
    try:
        code = _train_rank(args, task, config, dist)
        finished = True
        return code
    finally:
        dist.close(wait=finished)


def _launch_ranks(args: argparse.Namespace, argv: list[str], config: RunConfig) -> int:
    """--nproc N: the same command as N ranks under torch.distributed's launcher, one run id for all."""
    from ..rundir.runs import new_run_id
    from ..training.launcher import launch_ranks

    check_world(config, args.nproc)
    # the ranks train as ranks (they ignore --nproc), and torchrun's own parser must not see it
    child = _without(argv, ("--nproc", "--max-restarts"))
    # the run id is fixed here, so a restarted job finds its run and resumes it
    if not args.run_id:
        child += ["--run-id", new_run_id(config)]
    return launch_ranks(child, args.nproc, args.max_restarts)


def _without(argv: list[str], options: tuple[str, ...]) -> list[str]:
    """argv less these options and their values (as `--opt V`, `--opt=V` or an abbreviation)."""
    out, skip = [], False
    for token in argv:
        if skip:
            skip = False
            continue
        name = token.split("=", 1)[0]
        if len(name) > 3 and name.startswith("--") and any(o.startswith(name) for o in options):
            skip = "=" not in token
            continue
        out.append(token)
    return out


def _fit_to_budget(args: argparse.Namespace, config: RunConfig, data: Any, resume: Any,
                   dist: Any) -> tuple[RunConfig, dict[str, Any], Any]:
    """The settings with what auto fits to this machine and budget, the record of it for the log, and
    the data (read here when auto needed it).

    A resumed run keeps its settings, so there is nothing to record; a run auto does not apply to
    records why not. RNN_WORKBENCH_AUTO=0 turns auto off as --no-auto does (scripts that want the
    same settings on every machine, the test suite).
    """
    from ..training import autofit

    if resume:
        return config, {}, data
    if not args.auto:
        return config, {"off": "--no-auto"}, data
    if os.environ.get("RNN_WORKBENCH_AUTO", "").strip().lower() in ("0", "no", "off"):
        return config, {"off": "RNN_WORKBENCH_AUTO=" + os.environ["RNN_WORKBENCH_AUTO"]}, data
    given = set(given_settings(args))
    why = autofit.why_not(config, given, dist.world if dist is not None else 1)
    if why:
        return config, {"off": why}, data
    if not args.json and config.task == "charlm":
        print("auto: fitting the model to this machine's speed (a few seconds the first time on a "
              "machine)…", file=sys.stderr, flush=True)
    if data is None:  # the classifier's names, read here to count them; the trainer takes them as read
        from ..data.names import NamesData

        data = NamesData.from_dir(config.data, dedupe=config.dedupe)
    fitted, chosen = autofit.fit(config, data, given)
    return fitted.checked(), chosen, data


def _job_run(args: argparse.Namespace, config: RunConfig, dist: Any) -> tuple[str, Any, bool]:
    """(run id, checkpoint to resume, reuse the run directory), decided by rank 0 for every rank.

    After torchrun restarts a failed job, the run goes on in its own directory from its last.pt;
    rank 0 reads the checkpoint and sends it, so other nodes need not see the file.
    """
    from pathlib import Path

    from ..errors import CheckpointError
    from ..model.checkpoint import load
    from ..rundir.layout import RunDir
    from ..rundir.runs import new_run_id
    from ..training.distributed import elastic_marker, restarted

    decided: Any = None
    if dist.main:
        marker = elastic_marker(args.runs_dir)
        run_id = args.run_id
        if run_id is None and restarted() and marker is not None and marker.exists():
            run_id = marker.read_text().strip()
        run_id = run_id or new_run_id(config)
        resume, error = args.resume, ""
        run_dir = RunDir(Path(args.runs_dir) / run_id)
        if restarted():
            if run_dir.last.exists():
                resume = run_dir.last
        elif run_dir.has_run_events():
            error = f"{run_dir.path}: already holds a run; give another --run-id"
        elif args.run_id is None and marker is not None:
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.write_text(run_id + "\n")
        checkpoint = None
        if resume and not error:
            try:
                checkpoint = load(resume)
            except CheckpointError as exc:
                error = str(exc)
        decided = (run_id, checkpoint, restarted(), error)
    run_id, checkpoint, reuse, error = dist.broadcast(decided)
    if error:
        raise CliError(error)
    return run_id, checkpoint, reuse


def _train_rank(args: argparse.Namespace, task: str, config: RunConfig, dist: Any) -> int:
    """Train in this process: the whole run, or one rank of a torchrun job (dist)."""
    import torch

    from ..control.controls import Controls
    from ..data.text import CharCorpus
    from ..model.networks import count_parameters
    from ..rundir.runs import run_name
    from ..training.trainer import Trainer

    data = None
    if task == "charlm":
        data = CharCorpus.from_file(config.data, args.encoding, args.errors)
    run_id, reuse = args.run_id, False
    resume = getattr(args, "resumed_checkpoint", None) or args.resume
    if dist is not None:
        run_id, resume, reuse = _job_run(args, config, dist)
    main_rank = dist is None or dist.main
    controls = Controls()
    sinks: list[Any] = [] if args.json or not main_rank else [Progress()]
    tags: dict[str, Any] = {}
    if args.sweep_trial is not None:
        if not (args.sweep_storage and args.sweep_study):
            raise CliError("--sweep-trial needs --sweep-storage and --sweep-study")
        tags = {"sweep": {"study": args.sweep_study, "trial": args.sweep_trial, "storage": args.sweep_storage,
                          "metric": args.sweep_metric}}
        if main_rank:  # rank 0 reports for the job, and its stop reaches every rank
            from ..sweep.reporter import TrialReporter
            from ..sweep.storage import StorageError

            try:
                sinks.append(TrialReporter(args.sweep_storage, args.sweep_study, args.sweep_trial,
                                           args.sweep_metric, controls, args.sweep_pruner))
            except StorageError as exc:
                raise CliError(f"train: {exc}") from None
    config, auto, data = _fit_to_budget(args, config, data, resume, dist)
    trainer = Trainer(config, sink=_fan_out(sinks), runs_dir=args.runs_dir, controls=controls,
                      resume=resume, data=data, run_id=run_id, dist=dist, reuse_dir=reuse, tags=tags,
                      origin=getattr(args, "origin", ""), auto=auto)
    _install_stop_handlers(controls)
    if not args.json and main_rank:
        ranks = "" if dist is None else (f"; {dist.world} ranks ({dist.backend}), "
                                         f"{torch.get_num_threads()} CPU thread(s) each")
        print(f"run {trainer.run_id} on {trainer.device}: {config.cell} {config.num_layers}x"
              f"{config.hidden_size}, {count_parameters(trainer.model):,} parameters{ranks}\n"
              f"  watch and steer it from another terminal: workbench attach "
              f"{run_name(trainer.run_dir)}" + (f"\n  {args.origin}" if getattr(args, "origin", "") else "")
              + (f"\n  {describe_auto(auto)}" if auto else ""), file=sys.stderr)
    summary = trainer.run()
    if not main_rank:
        return 0
    if task == "charlm" and "settings" in auto and summary["elapsed"] >= MEASURED_RUN:
        # a language model auto fitted: its own speed corrects the probe's
        from ..training.probe import remember

        remember(config, trainer.device, trainer.precision, summary["chars_per_s"])
    if args.json:
        print(json.dumps({k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                          for k, v in summary.items()}))
    else:
        keys = ("val_loss", "train_loss", "chars_per_s") if task == "charlm" else \
            ("test_accuracy", "balanced_accuracy", "test_loss", "names_per_s")
        print("  ".join(f"{k} {summary[k]:.4f}" if isinstance(summary[k], float) else f"{k} {summary[k]}"
                        for k in keys))
        print(f"checkpoint {summary['checkpoint']}")
    return 0
