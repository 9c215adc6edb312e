"""`workbench runs`, `workbench ctl` and `train --detach`, run as a user would: processes and exit codes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

from rnn_engine.liveness import run_state

from .conftest import TINY_FLAGS, logged_steps, track, wait_until, workbench


def runs_json(runs_dir) -> dict[str, dict]:
    r = workbench("runs", "--runs-dir", str(runs_dir), "--json")
    assert r.returncode == 0, r.stderr
    return {run["run_id"]: run for run in json.loads(r.stdout)}


def test_ctl_steers_a_headless_run_and_stop_ends_it_with_a_checkpoint(headless, tmp_path):
    process, run_dir = headless("steer")
    runs = tmp_path / "runs"
    listed = runs_json(runs)["steer"]
    assert listed["state"] == "running" and listed["pid"] == process.pid and listed["task"] == "charlm"
    paused = workbench("ctl", "steer", "pause", "--runs-dir", str(runs))
    assert paused.returncode == 0 and "pauses" in paused.stdout, paused.stderr
    wait_until(lambda: run_state(run_dir).state == "paused", 30, "paused")
    assert runs_json(runs)["steer"]["state"] == "paused"
    sample = workbench("ctl", str(run_dir), "sample", "--prime", "the ", "--length", "20")
    assert sample.returncode == 0 and sample.stdout.startswith("the ") and len(sample.stdout) == 25
    refused = workbench("ctl", str(run_dir), "apply", "lr=-1")
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1
    assert "refused: lr: must be > 0" in refused.stderr
    fixed = workbench("ctl", str(run_dir), "apply", "hidden_size=64")
    assert fixed.returncode == 2 and "cannot change mid-run" in fixed.stderr
    applied = workbench("ctl", str(run_dir), "apply", "lr=0.002", "clip=2", "--json")
    assert applied.returncode == 0
    assert json.loads(applied.stdout)["reply"]["applied"] == {"lr": 0.002, "clip": 2.0}
    assert workbench("ctl", str(run_dir), "resume").returncode == 0
    step = logged_steps(run_dir)
    wait_until(lambda: logged_steps(run_dir) > step + 2, 30, "steps after resume", process)
    stopped = workbench("ctl", str(run_dir), "stop", "--wait")
    assert stopped.returncode == 0 and "stopped" in stopped.stdout, stopped.stderr
    assert process.wait(30) == 0
    lines = [json.loads(x) for x in (run_dir / "events.jsonl").read_text().splitlines()]
    assert lines[-1]["event"] == "RunFinished" and lines[-1]["reason"] == "stopped"
    assert any(x["event"] == "HyperparametersApplied" and x["changes"] == {"lr": 0.002, "clip": 2.0}
               for x in lines)
    assert (run_dir / "last.pt").exists() and not (run_dir / "control.sock").exists()
    gone = workbench("ctl", str(run_dir), "pause")
    assert gone.returncode == 2 and "is stopped, not a live run" in gone.stderr


def test_a_run_killed_with_sigkill_reads_dead(headless, tmp_path):
    process, run_dir = headless("victim")
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(30)
    listed = runs_json(tmp_path / "runs")["victim"]
    assert listed["state"] == "dead" and listed["pid"] is None
    assert "gone without a final event" in listed["reason"]
    table = workbench("runs", "--runs-dir", str(tmp_path / "runs"))
    assert "victim" in table.stdout and "dead" in table.stdout
    r = workbench("ctl", str(run_dir), "pause")
    assert r.returncode == 2 and "is dead" in r.stderr


def test_ctl_errors_are_one_line_with_status_2(tmp_path):
    for args, needle in ((["ctl", "nothing", "pause", "--runs-dir", str(tmp_path)], "no such run"),
                         (["ctl", "latest", "explode"], "invalid choice"),
                         (["ctl", "latest", "pause", "--runs-dir", str(tmp_path)], "no runs yet")):
        r = workbench(*args)
        assert r.returncode == 2 and needle in r.stderr and r.stderr.count("\n") == 1, r.stderr


def test_detach_returns_once_training_and_prints_how_to_attach(tiny_corpus, tmp_path):
    runs = tmp_path / "runs"
    track(runs)
    r = workbench("train", "--corpus", str(tiny_corpus), "--runs-dir", str(runs), "--run-id", "bg",
                  "--epochs", "100000", "--detach", *TINY_FLAGS)
    assert r.returncode == 0, r.stderr
    assert f"workbench attach {runs / 'bg'}" in r.stdout  # outside ./runs: named by its path
    assert run_state(runs / "bg").state == "running"
    stop = workbench("ctl", "bg", "stop", "--wait", "--runs-dir", str(runs))
    assert stop.returncode == 0, stop.stderr
    output = (runs / "bg" / "output.log").read_text()
    assert "epoch 1" in output or "step" in output
    assert f"checkpoint {runs / 'bg' / 'last.pt'}" in output


def test_detach_reports_a_run_that_cannot_start(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    r = workbench("train", "--corpus", str(empty), "--runs-dir", str(tmp_path / "runs"), "--detach",
                  *TINY_FLAGS)
    assert r.returncode == 2 and "empty.txt: is empty" in r.stderr.splitlines()[-1]


def test_sighup_under_nohup_does_not_stop_a_run(tiny_corpus, tmp_path):
    runs = tmp_path / "runs"
    track(runs)
    cmd = ["nohup", sys.executable, "-m", "workbench", "train", "--corpus", str(tiny_corpus),
           "--runs-dir", str(runs), "--run-id", "nohup", "--epochs", "100000", "--json", *TINY_FLAGS]
    with open(tmp_path / "out", "wb") as out:
        process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    track(process=process)
    run_dir = runs / "nohup"
    wait_until(lambda: logged_steps(run_dir) > 2, 90, "training", process)
    os.kill(process.pid, signal.SIGHUP)
    step = logged_steps(run_dir)
    wait_until(lambda: logged_steps(run_dir) > step + 5, 60, "steps after the hang-up", process)
    assert workbench("ctl", str(run_dir), "stop", "--wait").returncode == 0
    assert process.wait(30) == 0
