"""Shared fixtures: tiny corpora and names directories written to tmp_path, and runs as processes.

Every run a test starts states its precision: fp32 wherever paths or runs are compared, so the
same checks run on a CPU with AVX512_BF16 (where `auto` picks bf16) and on one without.
"""

from __future__ import annotations

import os
import subprocess
import sys

# the tests run the GPU path's Triton kernels on CPU tensors: Triton's interpreter must be chosen
# before Triton is first imported, in this process and in the runs it starts
os.environ["TRITON_INTERPRET"] = "1"
# a run fits its size to the measured speed of the machine (autofit): tests of everything else want
# the same settings on every machine; the autofit tests turn it on themselves
os.environ["RNN_WORKBENCH_AUTO"] = "0"
from pathlib import Path

import pytest

TINY_TEXT = "the cat sat on the mat. the dog sat on the log.\n" * 60


@pytest.fixture
def tiny_corpus(tmp_path: Path) -> Path:
    p = tmp_path / "tiny.txt"
    p.write_text(TINY_TEXT, encoding="utf-8")
    return p


@pytest.fixture
def names_dir(tmp_path: Path) -> Path:
    """Two synthetic languages: one ends in -ov, one starts with Mac and ends in -son."""
    d = tmp_path / "names"
    d.mkdir()
    stems = ["Ivan", "Petr", "Smirn", "Kuzn", "Pop", "Vasil", "Sokol", "Mikh", "Fedor", "Morоz",
             "Volk", "Alex", "Lebed", "Kozl", "Nov", "Orl", "Zaits", "Pavl", "Semen", "Egor"]
    (d / "Ruslandic.txt").write_text("\n".join(s + "ov" for s in stems) + "\n", encoding="utf-8")
    (d / "Scotlandic.txt").write_text("\n".join("Mac" + s.lower() + "son" for s in stems) + "\n",
                                      encoding="utf-8")
    return d


@pytest.fixture
def kernels():
    """The fused CPU kernels, for tests that compare them with the per-step path; a skip saying why
    where they cannot be built (no C++ compiler), so that no comparison passes against itself."""
    from rnn_engine.nn import fused

    if not fused.load():
        pytest.skip(f"fused kernels unavailable here: {fused.status()}")
    return fused


# -- runs as processes of their own --------------------------------------------------------------
TINY_FLAGS = ["--hidden-size", "24", "--num-layers", "1", "--dropout", "0", "--seq-len", "16",
              "--batch-size", "4", "--device", "cpu", "--precision", "fp32"]


def workbench(*args: str, timeout: float = 120, env: dict | None = None) -> subprocess.CompletedProcess:
    """`workbench ARGS` in a child process, as a user runs it; output captured as text."""
    return subprocess.run([sys.executable, "-m", "workbench", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def wait_until(condition, timeout: float = 60.0, what: str = "condition", process=None) -> None:
    """Poll `condition` until true; fail with `what` (and the process's exit) after `timeout` s."""
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if process is not None and process.poll() is not None:
            raise AssertionError(f"{what}: the process exited with {process.returncode}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not reached within {timeout:.0f} s")
        time.sleep(0.05)


def live_step(run_dir: Path) -> int:
    from rnn_engine.rundir.liveness import read_record

    return int(read_record(run_dir).get("step", 0))


def logged_steps(run_dir: Path) -> int:
    """The newest step in the run's log (the liveness record lags by a heartbeat)."""
    from rnn_engine.rundir.eventlog import EventReader

    steps = EventReader(run_dir / "events.jsonl").read().steps
    return steps[-1][0] if steps else 0


def run_processes(root: Path) -> set[int]:
    """Pids of the run processes recorded under `root` that are still those very processes.

    A pid is taken only where `liveness` confirms it as the run's (host, boot, start time), so a
    pid reused by another process since the run ended is left alone. A torchrun job records
    every rank, each with its start time.
    """
    import os

    from rnn_engine.rundir.liveness import process_alive, read_record

    pids: set[int] = set()
    for path in root.rglob("live.json"):
        record = read_record(path.parent)
        for proc in [record] + [{**record, **rank} for rank in record.get("ranks") or []]:
            pid = proc.get("pid")
            if isinstance(pid, int) and pid != os.getpid() and proc.get("pid_start") is not None \
                    and process_alive(proc):
                pids.add(pid)
    return pids


def kill_runs(root: Path, extra=()) -> None:
    """End the run processes under `root` and the `extra` Popen objects this suite started.

    `extra` are children of this process that have not been waited for, so their pids cannot have
    been reused; a recorded pid counts only as `run_processes` confirms it. A process that leads
    its own session (every run does) is ended with its group: the run and what it started.
    """
    import os
    import signal

    children = [p for p in extra if p.poll() is None]
    for pid in {p.pid for p in children} | run_processes(root):
        try:
            if os.getpgid(pid) == pid:
                os.killpg(pid, signal.SIGKILL)
            else:
                os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    for p in extra:
        p.wait(timeout=30)


# Runs outlive whoever starts them, by design; a test session that is itself killed (a CI time
# limit, Ctrl-C) cannot run fixture teardown, so every place a test may start a run is noted
# here and cleared at session end and on SIGTERM/SIGHUP as well.
_ROOTS: list[Path] = []
_PROCESSES: list = []
_APPS: list = []  # workbench apps, whose `launched` are the runs they started
_CLEANUPS: list = []  # what ends a server a test started (a PostgreSQL cluster); each may run twice


def track(root: Path | None = None, process=None, app=None, cleanup=None) -> None:
    if root is not None:
        _ROOTS.append(root)
    if process is not None:
        _PROCESSES.append(process)
    if app is not None:
        _APPS.append(app)
    if cleanup is not None:
        _CLEANUPS.append(cleanup)


def _kill_tracked() -> None:
    for root in _ROOTS:
        kill_runs(root)
    processes = _PROCESSES + [p for app in _APPS for p in app.launched]
    kill_runs(Path("/nonexistent"), processes)
    for cleanup in _CLEANUPS:
        try:
            cleanup()
        except Exception:  # noqa: BLE001 - the others still end
            pass


def pytest_configure(config) -> None:
    import os
    import signal

    def on_signal(signum, frame) -> None:
        _kill_tracked()
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)


def pytest_sessionfinish(session, exitstatus) -> None:
    _kill_tracked()


@pytest.fixture
def reap(tmp_path):
    """Register a directory whose runs, and Popen objects, are ended when the test ends, pass or fail."""
    roots: list[Path] = [tmp_path]
    processes: list = []
    track(tmp_path)

    def register(root: Path | None = None, process=None):
        if root is not None:
            roots.append(root)
            track(root)
        if process is not None:
            processes.append(process)
            track(process=process)
        return process

    try:
        yield register
    finally:
        for root in roots:
            kill_runs(root)
        kill_runs(Path("/nonexistent"), processes)


@pytest.fixture
def headless(tmp_path, tiny_corpus):
    """Start `workbench train` runs in the background, as a user would; all ended at teardown."""
    from rnn_engine.rundir.liveness import run_state

    started = []
    track(tmp_path)

    def start(run_id: str = "run", *extra: str, runs_dir: Path | None = None, epochs: int = 100_000,
              wait: bool = True):
        runs = runs_dir or tmp_path / "runs"
        cmd = [sys.executable, "-m", "workbench", "train", "--corpus", str(tiny_corpus), "--runs-dir",
               str(runs), "--run-id", run_id, "--epochs", str(epochs), "--json", *TINY_FLAGS, *extra]
        with open(tmp_path / f"{run_id}.out", "wb") as out:
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        started.append(proc)
        track(process=proc)
        run_dir = runs / run_id
        if wait:
            wait_until(lambda: run_state(run_dir).state == "running" and logged_steps(run_dir) > 0,
                       90, f"run {run_id} training", proc)
        return proc, run_dir

    try:
        yield start
    finally:
        kill_runs(tmp_path, started)
