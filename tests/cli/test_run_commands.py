"""`workbench runs`, `workbench ctl` and `train --detach`, run as a user would: processes and exit codes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from rnn_engine.rundir.liveness import LivenessWriter, run_state
from rnn_engine.training.devices import available_devices

from ..conftest import TINY_FLAGS, logged_steps, wait_until, workbench


def exited(pid: int) -> bool:
    """The process has ended: gone, or a zombie its parent (init, for a detached run) has not reaped."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def events_of(run_dir) -> list[dict]:
    return [json.loads(x) for x in (run_dir / "events.jsonl").read_text().splitlines()]


def runs_json(runs_dir) -> dict[str, dict]:
    r = workbench("runs", "--runs-dir", str(runs_dir), "--json")
    assert r.returncode == 0, r.stderr
    return {run["run_id"]: run for run in json.loads(r.stdout)}


def test_ctl_steers_a_headless_run_and_stop_ends_it_with_a_checkpoint(headless, tmp_path):
    process, run_dir = headless("steer", "--val-chars", "64")  # a routine evaluation reads a part
    runs = tmp_path / "runs"
    listed = runs_json(runs)["steer"]
    assert listed["state"] == "running" and listed["pid"] == process.pid and listed["task"] == "charlm"
    paused = workbench("ctl", "steer", "pause", "--runs-dir", str(runs))
    assert paused.returncode == 0 and "pauses" in paused.stdout, paused.stderr
    wait_until(lambda: run_state(run_dir).state == "paused", 30, "paused")
    assert runs_json(runs)["steer"]["state"] == "paused"
    devices = workbench("ctl", str(run_dir), "devices", "--json")
    assert devices.returncode == 0 and json.loads(devices.stdout)["reply"]["devices"] == available_devices()
    moved = workbench("ctl", str(run_dir), "device", "cuda")
    if available_devices()["cuda"]:  # no GPU here: refused with the reason, and the run stays where it is
        assert moved.returncode == 2 and "refused:" in moved.stderr and "cuda" in moved.stderr.lower()
    else:
        assert moved.returncode == 0 and "moves at the next batch" in moved.stdout
        assert workbench("ctl", str(run_dir), "device", "cpu").returncode == 0
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
    # evaluations on demand: the routine subset, then the whole validation split
    for extra, full in (([], False), (["--full"], True)):
        asked = workbench("ctl", str(run_dir), "evaluate", *extra)
        assert asked.returncode == 0 and "evaluates at the next batch" in asked.stdout
        wait_until(lambda full=full: [e for e in events_of(run_dir) if e["event"] == "Evaluated"
                                      and e["full"] == full], 30, f"an evaluation (full={full})", process)
    full = next(e for e in events_of(run_dir) if e["event"] == "Evaluated" and e["full"])
    routine = next(e for e in events_of(run_dir) if e["event"] == "Evaluated" and not e["full"])
    assert full["items"] > 0 and full["items"] >= routine["items"]
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


def test_detach_returns_once_training_and_prints_how_to_attach(tiny_corpus, tmp_path, reap):
    runs = tmp_path / "runs"
    reap(runs)  # the detached run is ended at teardown if the test fails before it stops it
    r = workbench("train", "--corpus", str(tiny_corpus), "--runs-dir", str(runs), "--run-id", "bg",
                  "--epochs", "100000", "--detach", *TINY_FLAGS)
    assert r.returncode == 0, r.stderr
    assert f"workbench attach {runs / 'bg'}" in r.stdout  # outside ./runs: named by its path
    assert f"workbench ctl {runs / 'bg'} pause|resume|stop" in r.stdout
    assert run_state(runs / "bg").state == "running"
    pid = run_state(runs / "bg").pid
    stop = workbench("ctl", "bg", "stop", "--wait", "--runs-dir", str(runs))
    assert stop.returncode == 0, stop.stderr
    assert exited(pid)  # --wait returned once the process itself had ended, not only its record
    output = (runs / "bg" / "output.log").read_text().strip().splitlines()
    # the run's own output: its start line, then the summary of the run that was stopped
    assert output[0].startswith("run bg on cpu: gru 1x24")
    assert output[-2].startswith("val_loss ") and output[-1] == f"checkpoint {runs / 'bg' / 'last.pt'}"


def test_detach_reports_a_run_that_cannot_start(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    r = workbench("train", "--corpus", str(empty), "--runs-dir", str(tmp_path / "runs"), "--detach",
                  *TINY_FLAGS)
    assert r.returncode == 2 and "empty.txt: is empty" in r.stderr.splitlines()[-1]


def test_sighup_under_nohup_does_not_stop_a_run(tiny_corpus, tmp_path, reap):
    runs = tmp_path / "runs"
    cmd = ["nohup", sys.executable, "-m", "workbench", "train", "--corpus", str(tiny_corpus),
           "--runs-dir", str(runs), "--run-id", "nohup", "--epochs", "100000", "--json", *TINY_FLAGS]
    with open(tmp_path / "out", "wb") as out:
        process = reap(runs, subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                              start_new_session=True))
    run_dir = runs / "nohup"
    wait_until(lambda: logged_steps(run_dir) > 2, 90, "training", process)
    os.kill(process.pid, signal.SIGHUP)
    step = logged_steps(run_dir)
    wait_until(lambda: logged_steps(run_dir) > step + 5, 60, "steps after the hang-up", process)
    assert workbench("ctl", str(run_dir), "stop", "--wait").returncode == 0
    assert process.wait(30) == 0


def test_ctl_gives_up_on_a_run_that_does_not_answer(tmp_path):
    # a live run (this very process) whose endpoint accepts connections and never replies
    run_dir = tmp_path / "runs" / "mute"
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text(json.dumps({"task": "charlm", "cell": "gru"}))
    path = tmp_path / "mute.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    writer = LivenessWriter(run_dir, {"step": 1, "socket": str(path)})
    try:
        server.bind(str(path))
        server.listen(4)
        writer.update(write=True, state="running")
        started = time.monotonic()
        r = workbench("ctl", str(run_dir), "status", "--timeout", "1.5")
        took = time.monotonic() - started
        assert r.returncode == 2 and r.stderr.strip() == "workbench: ctl status: no answer within 1.5 s"
        assert took >= 1.5  # it waited the time it was given
    finally:
        writer.close(state="stopped")
        server.close()


def test_wait_blocks_until_the_runs_end_and_says_how_they_did(headless, tmp_path):
    runs = tmp_path / "runs"
    process, run_dir = headless("long")
    waiter = subprocess.Popen([sys.executable, "-m", "workbench", "wait", "long", "--runs-dir", str(runs)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            waiter.wait(1.0)  # the run trains on: wait waits
        assert workbench("ctl", "long", "stop", "--runs-dir", str(runs)).returncode == 0
        out, err = waiter.communicate(timeout=60)
    finally:
        waiter.kill()
    assert waiter.returncode == 0 and out.strip() == "long: stopped", err
    short = workbench("wait", "long", "--runs-dir", str(runs), "--timeout", "5", "--json")
    assert short.returncode == 0 and json.loads(short.stdout) == {"long": "stopped"}
    # one that failed (killed, so it died without a final event): exit 1
    victim, _ = headless("victim")
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait(30)
    both = workbench("wait", "long", "victim", "--runs-dir", str(runs))
    assert both.returncode == 1 and "victim: dead (process" in both.stdout and "long: stopped" in both.stdout
    # still running after --timeout, or no such run: exit 2 with one line
    headless("busy")
    late = workbench("wait", "busy", "--runs-dir", str(runs), "--timeout", "1")
    assert late.returncode == 2 and late.stderr.strip() == "workbench: wait: still running after 1 s: busy"
    missing = workbench("wait", "nothing", "--runs-dir", str(runs))
    assert missing.returncode == 2 and "no such run" in missing.stderr


def test_a_resumed_run_goes_on_with_its_live_changes_and_its_own_data(headless, tmp_path):
    process, run_dir = headless("parent", "--lr", "3e-3", "--lr-schedule", "constant")
    runs = tmp_path / "runs"
    applied = workbench("ctl", "parent", "apply", "lr=1e-3", "--runs-dir", str(runs))
    assert applied.returncode == 0, applied.stderr
    wait_until(lambda: any(e["event"] == "StepFinished" and e["lr"] == pytest.approx(1e-3)
                           for e in events_of(run_dir)), 30, "a step at the applied lr", process)
    assert workbench("ctl", "parent", "stop", "--wait", "--runs-dir", str(runs)).returncode == 0
    # no --corpus: the run knows its data; `latest` names it as it does for attach and ctl
    r = workbench("train", "--resume", "latest", "--runs-dir", str(runs), "--run-id", "child", "--max-steps",
                  str(logged_steps(run_dir) + 3), "--json")
    assert r.returncode == 0, r.stderr
    events = events_of(runs / "child")
    started = events[0]
    assert started["event"] == "RunStarted" and started["config"]["lr"] == pytest.approx(1e-3)
    assert started["config"]["data"] == json.loads((run_dir / "config.json").read_text())["data"]
    assert "resumed from parent at step" in started["origin"]
    assert "changed live there: lr 0.003 → 0.001" in started["origin"]
    first = next(e for e in events if e["event"] == "StepFinished")
    assert first["lr"] == pytest.approx(1e-3)
    # a setting given explicitly wins, and the log names it as a change
    r = workbench("train", "--resume", "child", "--runs-dir", str(runs), "--run-id", "grandchild",
                  "--lr", "5e-4", "--max-steps", str(first["step"] + 6), "--json")
    assert r.returncode == 0, r.stderr
    started = events_of(runs / "grandchild")[0]
    assert started["config"]["lr"] == pytest.approx(5e-4)
    assert "given here: lr 0.001 → 0.0005" in started["origin"]
    # the model cannot change on the way
    r = workbench("train", "--resume", "child", "--runs-dir", str(runs), "--hidden-size", "64")
    assert r.returncode == 2 and "a resumed run keeps its model (hidden_size 24)" in r.stderr
    r = workbench("train", "--runs-dir", str(runs))
    assert r.returncode == 2 and "--corpus FILE is required, unless --resume RUN" in r.stderr
