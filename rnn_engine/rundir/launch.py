"""Starting a training run as a process of its own, which outlives whoever started it.

The process is `workbench train` (or `train-names`) with every setting spelled out as a flag, so a
run started from the app is the same thing as one started in a shell, and its command line can be
shown and repeated. It gets a session of its own: a closed terminal, an SSH drop or the app being
killed does not reach it. Its own output goes to runs/<id>/output.log.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

from ..config import COMMAND_FIELDS, TASK_ONLY, RunConfig, field_info
from .layout import OUTPUT
from .liveness import run_state


def _flag_value(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return repr(value) if isinstance(value, float) else str(value)


def training_argv(config: RunConfig, runs_dir: str | os.PathLike, run_id: str,
                  resume: str | None = None, only: tuple[str, ...] | None = None,
                  left_to_auto: tuple[str, ...] | None = ()) -> list[str]:
    """The command line that trains `config` as run `run_id` under `runs_dir`.

    With `resume`, the run continues from that checkpoint with the settings it had when it
    stopped, and its own data: only the settings named in `only` are given (its budget, say).
    A new run leaves the settings in `left_to_auto` for the run to fit to its budget; None turns
    that off (`--no-auto`).
    """
    lm = config.task == "charlm"
    argv = [sys.executable, "-m", "workbench", "train" if lm else "train-names"]
    if not resume:
        argv += ["--corpus" if lm else "--data", str(Path(config.data).resolve())]
    argv += ["--runs-dir", str(Path(runs_dir).resolve()), "--run-id", run_id, "--json"]
    if not lm and config.dedupe and not resume:
        argv.append("--dedupe")
    if left_to_auto is None and not resume:
        argv.append("--no-auto")
    skip = set(left_to_auto or ())
    argv += [flag for name, pair in _flag_pairs(config, only) if name not in skip for flag in pair]
    if resume:
        argv += ["--resume", str(Path(resume).resolve())]
    return argv


def config_flags(config: RunConfig, only: tuple[str, ...] | None = None) -> list[str]:
    """Every setting of `config` (or those in `only`) as the flag that sets it (the data and task are
    the command's own)."""
    return [f for _, pair in _flag_pairs(config, only) for f in pair]


def _flag_pairs(config: RunConfig, only: tuple[str, ...] | None) -> list[tuple[str, list[str]]]:
    pairs = []
    for name, *_ in field_info():
        value = getattr(config, name)
        if TASK_ONLY.get(name, config.task) != config.task or (only is not None and name not in only):
            continue  # the other task's setting: the command would only mislead
        if name not in COMMAND_FIELDS and value != "":  # "" is no preset, which is the default
            pairs.append((name, ["--" + name.replace("_", "-"), _flag_value(value)]))
    return pairs


def sweep_argv(config: RunConfig, space_file: str | os.PathLike, runs_dir: str | os.PathLike, study: str,
               trials: int, parallel: int = 1, pruner: str = "median", sampler: str = "tpe") -> list[str]:
    """The `workbench sweep` command over `space_file` whose trials take `config`'s other settings."""
    lm = config.task == "charlm"
    argv = [sys.executable, "-m", "workbench", "sweep", "--corpus" if lm else "--names",
            str(Path(config.data).resolve()), "--space", str(Path(space_file).resolve()),
            "--runs-dir", str(Path(runs_dir).resolve()), "--study", study, "--trials", str(trials),
            "--parallel", str(parallel), "--pruner", pruner, "--sampler", sampler]
    if not lm and config.dedupe:
        argv.append("--dedupe")
    return argv + config_flags(config)


def command_line(argv: list[str]) -> str:
    """`training_argv` as a person would type it: `workbench ...`, quoted for a POSIX shell."""
    return "workbench " + shlex.join(argv[3:])


def start_run(argv: list[str], run_dir: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start a training command detached from this process's session; output to run_dir/output.log."""
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / OUTPUT, "ab") as log:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, close_fds=True, env=env)


def output_tail(run_dir: Path, lines: int = 1) -> str:
    """The last lines the process printed (its error, when it failed to start)."""
    try:
        text = (run_dir / OUTPUT).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])


def wait_started(process: subprocess.Popen, run_dir: Path, timeout: float = 600.0) -> str:
    """Wait until the run trains, pauses or ends; returns '' or the error it exited with.

    Loading a large corpus and building the kernels on first use take a while; a run that
    fails before training (bad data, a device that is absent) exits with its reason printed.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code = process.poll()
        if code is not None:
            if code == 0:
                return ""
            return output_tail(run_dir) or f"the training process exited with status {code}"
        if run_state(run_dir).state in ("running", "paused", "finished", "stopped"):
            return ""
        time.sleep(0.1)
    return f"the run did not start within {timeout:.0f} s; see {run_dir / OUTPUT}"


