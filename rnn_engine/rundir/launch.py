"""Starting a training run as a process of its own, which outlives whoever started it.

The process is `workbench train` (or `train-names`) with every setting spelled out as a flag, so a
run started from the app is the same thing as one started in a shell, and its command line can be
shown and repeated. It gets a session of its own: a closed terminal, an SSH drop or the app being
killed does not reach it. Its own output goes to runs/<id>/output.log.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

from .config import COMMAND_FIELDS, RunConfig, field_info
from .liveness import run_state

OUTPUT = "output.log"


def _flag_value(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return repr(value) if isinstance(value, float) else str(value)


def training_argv(config: RunConfig, runs_dir: str | os.PathLike, run_id: str,
                  resume: str | None = None) -> list[str]:
    """The command line that trains `config` as run `run_id` under `runs_dir`."""
    lm = config.task == "charlm"
    argv = [sys.executable, "-m", "workbench", "train" if lm else "train-names",
            "--corpus" if lm else "--data", str(Path(config.data).resolve()),
            "--runs-dir", str(Path(runs_dir).resolve()), "--run-id", run_id, "--json"]
    if not lm and config.dedupe:
        argv.append("--dedupe")
    for name, *_ in field_info():
        value = getattr(config, name)
        if name not in COMMAND_FIELDS and value != "":  # "" is no preset, which is the default
            argv += ["--" + name.replace("_", "-"), _flag_value(value)]
    if resume:
        argv += ["--resume", str(Path(resume).resolve())]
    return argv


def command_line(argv: list[str]) -> str:
    """`training_argv` as a person would type it: `workbench ...`, quoted for a POSIX shell."""
    return "workbench " + shlex.join(argv[3:])


def start_run(argv: list[str], run_dir: Path) -> subprocess.Popen:
    """Start a training command detached from this process's session; output to run_dir/output.log."""
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / OUTPUT, "ab") as log:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, close_fds=True)


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


def launch_ranks(argv: list[str], nproc: int, max_restarts: int) -> int:
    """Run `workbench <argv>` as `nproc` local ranks under torch.distributed's elastic launcher.

    This is `torchrun --standalone --nproc-per-node N --max-restarts K -m workbench ...` in this
    process: the agent starts the ranks, watches them and, after a failure, restarts them all (they
    resume from the run's last checkpoint) until the restarts are used up. Each rank gets
    cores / N threads unless OMP_NUM_THREADS is set.
    """
    from torch.distributed import run as torchrun
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    from .distributed import cores
    from .errors import DistributedError

    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, cores() // nproc)))
    try:
        torchrun.main(["--standalone", f"--nproc-per-node={nproc}", f"--max-restarts={max_restarts}",
                       "--module", "workbench", *argv])
    except ChildFailedError as exc:
        raise DistributedError(describe_failure(exc.failures, max_restarts)) from None
    except SignalException as exc:
        return 128 + int(exc.sigval)
    return 0


def describe_failure(failures: dict[int, object], max_restarts: int) -> str:
    """One line for the ranks that failed: which, how, and whether restarts were left."""
    parts = []
    def order(item: tuple[int, object]) -> tuple[bool, bool, int]:
        # a rank killed from outside first: the others failed because of it, or were ended by the
        # launcher with SIGTERM once it saw the first failure
        code = getattr(item[1], "exitcode", 1)
        return code == -signal.SIGTERM, code >= 0, item[0]

    for rank, failure in sorted(failures.items(), key=order):
        code = getattr(failure, "exitcode", 1)
        if code == -signal.SIGTERM:
            how = "was ended by the launcher (SIGTERM)"
        elif code < 0 and hasattr(failure, "signal_name"):
            how = f"was killed by {failure.signal_name()}"
        else:
            how = f"exited with status {code}"
        parts.append(f"rank {rank} (pid {getattr(failure, 'pid', '?')}) {how}")
    tried = f" after {max_restarts} restart{'s' * (max_restarts != 1)}" if max_restarts else ""
    return "the job failed" + tried + ": " + "; ".join(parts)
