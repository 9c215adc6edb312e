"""Data-parallel runs under torch.distributed's launcher (2 ranks, gloo on the CPU), as a user starts them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from rnn_engine.rundir.liveness import read_record, run_state
from rnn_engine.training.distributed import cores

from ..conftest import TINY_FLAGS, kill_runs, logged_steps, track, wait_until, workbench

# every step its own record, so losses can be compared step by step
ENV = {**os.environ, "RNN_WORKBENCH_STEP_LOG_INTERVAL": "0", "RNN_WORKBENCH_DIST_TIMEOUT": "20"}
SAME = ["--lr-schedule", "constant", "--eval-interval", "0", "--sample-length", "0"]


def summary_of(runs: Path, *args: str) -> dict:
    """Run `workbench ARGS` to the end and return its --json summary; nothing of it outlives the call."""
    track(runs)
    try:
        r = subprocess.run([sys.executable, "-m", "workbench", *args, "--runs-dir", str(runs), "--json"],
                           capture_output=True, text=True, timeout=180, env=ENV, start_new_session=True)
    finally:
        kill_runs(runs)
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def train(corpus: Path, runs: Path, run_id: str, *extra: str, nproc: int = 1) -> dict:
    return summary_of(runs, "train", "--corpus", str(corpus), "--run-id", run_id, "--nproc", str(nproc),
                      *TINY_FLAGS, *SAME, *extra)


def step_losses(run_dir: Path) -> dict[int, float]:
    lines = [json.loads(x) for x in (run_dir / "events.jsonl").read_text().splitlines()]
    return {e["step"]: e["loss"] for e in lines if e["event"] == "StepFinished"}


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "last.pt", weights_only=True)["model"]


def assert_same_training(a: Path, b: Path, steps: range) -> None:
    la, lb = step_losses(a), step_losses(b)
    assert sorted(la) == sorted(lb) == list(steps)
    for step in steps:
        assert la[step] == pytest.approx(lb[step], rel=1e-5, abs=1e-6), step
    wa, wb = weights(a), weights(b)
    for name in wa:
        torch.testing.assert_close(wa[name], wb[name], rtol=1e-4, atol=1e-5, msg=name)


def test_two_ranks_train_what_one_does_and_checkpoints_resume_on_either(tiny_corpus, tmp_path):
    runs = tmp_path / "runs"
    one = train(tiny_corpus, runs, "one", "--max-steps", "10")
    two = train(tiny_corpus, runs, "two", "--max-steps", "10", nproc=2)
    assert (one["world_size"], two["world_size"]) == (1, 2) and one["steps"] == two["steps"] == 10
    assert_same_training(runs / "one", runs / "two", range(1, 11))
    started = json.loads((runs / "two" / "events.jsonl").read_text().splitlines()[0])
    # --nproc gives each local rank its share of the cores, unless OMP_NUM_THREADS says otherwise
    threads = int(ENV.get("OMP_NUM_THREADS") or max(1, cores() // 2))
    assert started["world_size"] == 2 and started["threads"] == threads
    ranks = read_record(runs / "two")["ranks"]
    assert [r["rank"] for r in ranks] == [0, 1] and ranks[0]["pid"] != ranks[1]["pid"]

    # a 1-rank checkpoint goes on with 2 ranks, and a 2-rank one with 1: the same training
    train(tiny_corpus, runs, "one-then-two", "--max-steps", "16", "--resume", str(runs / "one"), nproc=2)
    train(tiny_corpus, runs, "two-then-one", "--max-steps", "16", "--resume", str(runs / "two"))
    assert_same_training(runs / "one-then-two", runs / "two-then-one", range(11, 17))


def test_a_parallel_cell_trains_on_two_ranks_what_it_trains_on_one(tiny_corpus, tmp_path):
    runs = tmp_path / "runs"
    one = train(tiny_corpus, runs, "one", "--max-steps", "6", "--cell", "mingru")
    two = train(tiny_corpus, runs, "two", "--max-steps", "6", "--cell", "mingru", nproc=2)
    assert (one["world_size"], two["world_size"]) == (1, 2)
    assert_same_training(runs / "one", runs / "two", range(1, 7))


def test_batch_size_that_the_ranks_cannot_share_is_refused(tiny_corpus, tmp_path):
    r = workbench("train", "--corpus", str(tiny_corpus), "--runs-dir", str(tmp_path / "runs"), "--nproc", "2",
                  *TINY_FLAGS, "--batch-size", "5", timeout=60)
    assert r.returncode == 2 and "5 streams cannot be split evenly over 2 ranks" in r.stderr
    assert r.stderr.count("\n") == 1 and not (tmp_path / "runs").exists()


def test_names_on_two_ranks_score_what_one_process_measures(names_dir, tmp_path):
    from rnn_engine.model.checkpoint import load
    from rnn_engine.training.trainer import Trainer

    runs = tmp_path / "runs"
    summary = summary_of(runs, "train-names", "--data", str(names_dir), "--run-id", "names", "--nproc", "2",
                         "--epochs", "3", "--batch-size", "7", "--hidden-size", "16", "--device", "cpu")
    assert summary["world_size"] == 2
    # 36 training names in batches of 7 over 3 epochs: every name once per epoch, the last batch split 1+...
    assert summary["steps"] == 3 * 6
    ck = load(runs / "names" / "last.pt")
    alone = Trainer(ck.config, runs_dir=tmp_path / "alone", resume=runs / "names" / "last.pt", serve=False)
    result = alone.evaluate()
    assert result["val_accuracy"] == summary["test_accuracy"]
    assert result["balanced_accuracy"] == summary["balanced_accuracy"]
    assert result["val_loss"] == pytest.approx(summary["test_loss"], rel=1e-6)
    assert result["items"] == len(alone.task.data.test)


@pytest.fixture
def job(tiny_corpus, tmp_path):
    """Start a 2-rank training job in the background: (launcher process, run dir, its stderr file).

    Everything it started is ended at teardown, whatever the test did to it.
    """
    runs = tmp_path / "runs"
    track(runs)
    started = []

    def start(run_id: str, *extra: str) -> tuple[subprocess.Popen, Path, Path]:
        cmd = [sys.executable, "-m", "workbench", "train", "--corpus", str(tiny_corpus), "--runs-dir",
               str(runs), "--run-id", run_id, "--nproc", "2", "--epochs", "100000", *TINY_FLAGS, *extra]
        err = tmp_path / f"{run_id}.err"
        with open(err, "wb") as out:
            process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=out, env=ENV,
                                       start_new_session=True)
        started.append(process)
        track(process=process)
        return process, runs / run_id, err

    try:
        yield start
    finally:
        kill_runs(runs, started)


def events(run_dir: Path) -> list[dict]:
    if not (run_dir / "events.jsonl").exists():
        return []
    return [json.loads(x) for x in (run_dir / "events.jsonl").read_text().splitlines()]


def rank_pids(run_dir: Path) -> list[int]:
    return [r["pid"] for r in read_record(run_dir).get("ranks") or []]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def ctl(run_dir: Path, *args: str) -> subprocess.CompletedProcess:
    return workbench("ctl", str(run_dir), *args, timeout=60)


def test_pause_and_stop_from_ctl_reach_both_ranks(job):
    process, run_dir, _ = job("steer")
    wait_until(lambda: run_state(run_dir).state == "running" and logged_steps(run_dir) > 0
               and len(rank_pids(run_dir)) == 2, 120, "job training", process)
    assert ctl(run_dir, "pause").returncode == 0
    wait_until(lambda: run_state(run_dir).state == "paused", 30, "paused", process)
    step = logged_steps(run_dir)
    before = [cpu_seconds(pid) for pid in rank_pids(run_dir)]
    time.sleep(1.5)
    # both ranks wait: rank 0 for a command, rank 1 for rank 0's word; neither trains
    assert all(cpu_seconds(pid) - b < 0.5 for pid, b in zip(rank_pids(run_dir), before))
    assert logged_steps(run_dir) == step
    status = json.loads(ctl(run_dir, "status", "--json").stdout)
    assert status["reply"]["world_size"] == 2
    device = ctl(run_dir, "device", "cpu")
    assert device.returncode == 2 and "2 ranks stays on its devices" in device.stderr
    stopped = ctl(run_dir, "stop", "--wait")
    assert stopped.returncode == 0, stopped.stderr
    assert process.wait(60) == 0  # every rank ended cleanly, at the same step
    last = events(run_dir)[-1]
    assert last["event"] == "RunFinished" and last["reason"] == "stopped" and last["step"] == step


def test_a_killed_rank_ends_the_job_with_a_message(job):
    process, run_dir, stderr = job("lost")
    wait_until(lambda: logged_steps(run_dir) > 0 and len(rank_pids(run_dir)) == 2, 120, "training",
               process)
    rank0, rank1 = rank_pids(run_dir)
    os.kill(rank1, signal.SIGKILL)
    assert process.wait(60) == 1
    err = stderr.read_text()
    assert "workbench: the job failed: rank 1" in err and "was killed by SIGKILL" in err
    assert "lost contact with the other ranks" in err and "Traceback" not in err
    assert events(run_dir)[-1]["event"] == "RunFailed"
    assert run_state(run_dir).state == "failed"
    with pytest.raises(ProcessLookupError):
        os.kill(rank0, 0)


def test_max_restarts_resumes_the_job_from_its_last_checkpoint(job):
    process, run_dir, _ = job("elastic", "--max-restarts", "1", "--eval-interval", "0.3")
    wait_until(lambda: any(e["event"] == "CheckpointSaved" for e in events(run_dir))
               and len(rank_pids(run_dir)) == 2, 120, "a checkpoint", process)
    first = rank_pids(run_dir)
    os.kill(first[1], signal.SIGKILL)

    def restarted() -> bool:
        starts = [e for e in events(run_dir) if e["event"] == "RunStarted"]
        return len(starts) == 2 and run_state(run_dir).state == "running" and \
            set(rank_pids(run_dir)).isdisjoint(first)

    wait_until(restarted, 120, "the restarted job", process)
    log = events(run_dir)
    failed = next(e for e in log if e["event"] == "RunFailed")
    again = [e for e in log if e["event"] == "RunStarted"][1]
    assert 0 < again["resumed_from_step"] <= failed["step"]
    assert ctl(run_dir, "stop", "--wait").returncode == 0
    assert process.wait(60) == 0
    assert events(run_dir)[-1]["event"] == "RunFinished"
