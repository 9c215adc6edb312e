"""Sweeps as equal workers across machines, on a real PostgreSQL server and on the journal file.

Two `workbench sweep` processes given the same command line stand for two machines: started at
the same moment on a new study they both come up, draw different parameters and reach the total
once; one killed with its trial's run (a power cut) costs that trial a retry, not the study.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rnn_engine.rundir.liveness import run_state
from rnn_engine.sweep.study import counted_trials

from ..conftest import kill_runs, track, wait_until, workbench

# two epochs of a 24-unit GRU on the tiny text: a trial of a few seconds
TRIAL = ["--hidden-size", "24", "--num-layers", "1", "--seq-len", "16", "--batch-size", "4", "--epochs", "2",
         "--device", "cpu", "--precision", "fp32", "--sample-length", "0", "--eval-interval", "0"]
SPACE = '[space]\nlr = { low = 3e-3, high = 3e-2, log = true }\nhidden_size = [16, 24]\n'


@pytest.fixture(params=["postgresql", "journal"])
def storage(request, tmp_path):
    """A new study's storage: a fresh database on the session's server, or a journal file."""
    if request.param == "journal":
        return str(tmp_path / "shared" / "study.journal")
    return request.getfixturevalue("new_database")


@pytest.fixture
def workers(tmp_path, tiny_corpus, storage):
    """Start sweep processes on one study; every one, and every trial run, is ended at teardown."""
    runs = tmp_path / "runs"
    track(runs)
    space = tmp_path / "space.toml"
    space.write_text(SPACE)
    started: list[subprocess.Popen] = []

    def start(*args: str) -> subprocess.Popen:
        cmd = [sys.executable, "-m", "workbench", "sweep", "--corpus", str(tiny_corpus), "--space",
               str(space), "--runs-dir", str(runs), "--storage", storage, "--seed", "5", *TRIAL, "--json",
               *args]
        process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        started.append(process)
        return process

    try:
        yield start, runs, storage
    finally:
        for p in started:
            if p.poll() is None:
                p.kill()
            p.communicate()
        kill_runs(runs)


def study_trials(storage: str) -> list:
    import optuna

    from rnn_engine.sweep.storage import open_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.load_study(study_name="space", storage=open_storage(storage)).get_trials(deepcopy=False)


def finish(process: subprocess.Popen, timeout: float = 240) -> tuple[dict, str]:
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1]), err


def test_two_workers_started_together_reach_the_total_with_distinct_trials(workers):
    start, runs, storage = workers
    first, second = start("--trials", "4"), start("--trials", "4")  # as two machines would, at once
    (a, a_said), (b, b_said) = finish(first), finish(second)
    # both came up and both trained: neither lost the race to create the study's tables
    assert " → run space-" in a_said and " → run space-" in b_said, a_said + b_said
    trials = study_trials(storage)
    counted = counted_trials(trials)
    assert len(counted) == 4 and all(t.state.name == "COMPLETE" for t in counted)
    assert a["trials"]["complete"] == 4 or b["trials"]["complete"] == 4
    # every trial its own parameters, drawn with its own seed
    params = [tuple(sorted(t.params.items())) for t in counted]
    assert len(set(params)) == 4, params
    seeds = [t.user_attrs["sampler_seed"] for t in counted]
    assert len(set(seeds)) == 4
    assert sorted(p.name for p in runs.iterdir() if p.name != "sweeps") == \
        sorted(t.user_attrs["run_id"] for t in counted)


def test_a_worker_killed_mid_trial_costs_that_trial_a_retry(workers):
    start, runs, storage = workers
    # trials long enough to be killed while they train
    beat = ["--heartbeat-interval", "0.5", "--grace-period", "4", "--pruner", "none", "--epochs", "4"]
    doomed = start("--trials", "3", *beat)

    def doomed_trial():
        try:
            trials = study_trials(storage)
        except KeyError:  # the worker has not made the study yet
            return None
        for t in trials:
            mine = t.state.name == "RUNNING" and t.user_attrs.get("sweep_pid") == doomed.pid
            if mine and t.user_attrs.get("trial_pid") and \
                    run_state(Path(t.user_attrs["run_dir"])).state == "running":
                return t
        return None

    wait_until(lambda: doomed_trial() is not None, 120, "the first worker's trial", doomed)
    survivor = start("--trials", "3", *beat)

    def survivor_works():
        return any(t.state.name == "RUNNING" and t.user_attrs.get("sweep_pid") == survivor.pid
                   for t in study_trials(storage))

    # both at work, as two machines would be, before one of them dies
    wait_until(survivor_works, 120, "the second worker's trial", survivor)
    victim = doomed_trial()
    if victim is None:  # its first trial ended meanwhile: the next one will do
        wait_until(lambda: doomed_trial() is not None, 120, "the first worker's next trial", doomed)
        victim = doomed_trial()
    # the power cut: the worker and its trial's run at once, no chance to tell anyone
    for pid in (doomed.pid, victim.user_attrs["trial_pid"]):
        os.kill(pid, signal.SIGKILL)
    t0 = time.monotonic()
    result, said = finish(survivor)
    assert f"trial {victim.number}: failed: worker on " in said and "stopped answering" in said, said
    trials = {t.number: t for t in study_trials(storage)}
    counted = counted_trials(list(trials.values()))
    assert not [t for t in trials.values() if t.state.name == "RUNNING"]
    dead = trials[victim.number]
    assert dead.state.name == "FAIL" and dead not in counted
    assert "stopped answering" in dead.user_attrs["reason"]
    retry = next(t for t in trials.values() if t.user_attrs.get("retry_of") == victim.number)
    assert retry.params == dead.params and retry.state.name == "COMPLETE"
    # the total is reached with the retry in the dead trial's place
    assert result["trials"] == {"complete": 3, "pruned": 0, "failed": 0, "running": 0}
    assert result["retried"] == 1 and time.monotonic() - t0 < 200
    # what a person sees: the killed run is dead, and says what became of its trial
    listed = workbench("runs", "--runs-dir", str(runs)).stdout
    row = next(line for line in listed.splitlines() if line.startswith(victim.user_attrs["run_id"]))
    assert row.endswith(" dead"), listed
    assert f"trial {victim.number} of sweep space: failed: worker on " in listed


def test_a_database_that_cannot_be_opened_is_one_line_and_starts_nothing(tmp_path, tiny_corpus, postgres):
    space = tmp_path / "space.toml"
    space.write_text(SPACE)

    def sweep(url: str, env: dict | None = None) -> tuple[int, str]:
        r = workbench("sweep", "--corpus", str(tiny_corpus), "--space", str(space), "--runs-dir",
                      str(tmp_path / "runs"), "--storage", url, "--trials", "1", *TRIAL, env=env)
        assert "Traceback" not in r.stderr, r.stderr
        return r.returncode, r.stderr.strip()

    closed = postgres.url.rsplit(":", 1)[0] + f":{_closed_port()}/study"
    code, said = sweep(closed)
    assert code == 2 and said.count("\n") == 0 and "cannot reach the database server at 127.0.0.1:" in said
    code, said = sweep(f"{postgres.url}/no_such_database")
    assert code == 2 and "has no database 'no_such_database'" in said and "createdb" in said
    code, said = sweep(postgres.url.replace("postgres@", "nobody@") + "/postgres")
    assert code == 2 and "refused the login of user nobody" in said
    code, said = sweep("postgresql://[::1:bad/x")
    assert code == 2 and said.startswith("workbench: sweep: --storage") and said.count("\n") == 0
    # no driver: the plain URL names the extra that brings one
    hide = tmp_path / "nodriver"
    hide.mkdir()
    for module in ("psycopg", "psycopg2"):
        (hide / f"{module}.py").write_text("raise ImportError('hidden by the test')\n")
    env = {**os.environ, "PYTHONPATH": str(hide)}
    code, said = sweep(f"{postgres.url}/postgres", env)
    assert code == 2 and "pip install 'rnn-workbench[postgres]'" in said, said
    runs = tmp_path / "runs"
    assert not runs.exists() or not any(p.name != "sweeps" for p in runs.iterdir())


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends: nothing listens there
