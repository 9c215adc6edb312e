"""What a run directory holds and how readers interpret it: the event log, live.json, run lookup."""

from __future__ import annotations

import json
import os
import platform
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from rnn_engine.data.text import StreamBatches
from rnn_engine.events import EpochFinished, GradientsMeasured, RunPaused, StepFinished, event_from_dict
from rnn_engine.rundir.eventlog import EventLog, EventReader, last_record, parse_lines
from rnn_engine.rundir.liveness import LivenessWriter, process_alive, run_state
from rnn_engine.rundir.runs import RunNotFound, resolve_run, scan_runs


def step(n: int, loss: float = 1.0) -> StepFinished:
    return StepFinished(n, 1, loss, 0.5, 0.5, 1e-3, 1000.0, n * 0.01, 0.1, 10.0)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_fast_steps_are_rolled_up_and_other_events_keep_their_place(tmp_path):
    clock = FakeClock()
    log = EventLog(tmp_path / "events.jsonl", interval=0.25, clock=clock)
    for n in range(1, 101):  # 100 steps, 10 ms apart: one record per 0.25 s
        clock.now = n * 0.01
        log.write(step(n, loss=float(n)))
        if n == 50:
            log.write(RunPaused(50, "paused by user"))
    log.close()
    records = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    steps = [r for r in records if r["event"] == "StepFinished"]
    assert sum(r["span"] for r in steps) == 100 and steps[-1]["step"] == 100
    assert len(steps) <= 100 * 0.01 / 0.25 + 3
    pause = next(i for i, r in enumerate(records) if r["event"] == "RunPaused")
    assert records[pause - 1]["step"] == 50  # the steps before the pause are written before it
    # each record's loss is the mean over the steps it stands for
    done = 0
    for r in steps:
        first = done + 1
        assert r["loss"] == pytest.approx(sum(range(first, r["step"] + 1)) / r["span"])
        done = r["step"]


def test_a_slow_step_is_written_at_once_and_flush_writes_a_held_one(tmp_path):
    clock = FakeClock()
    log = EventLog(tmp_path / "events.jsonl", interval=0.25, clock=clock)
    log.write(step(1))
    clock.now = 0.1
    log.write(step(2))  # held: too soon after step 1
    assert log.lines == 1
    log.flush()  # the trainer is about to wait
    clock.now = 1.0
    log.write(step(3))  # slow step: at once
    assert log.lines == 3
    log.close()


def test_reader_follows_whole_lines_only(tmp_path):
    path = tmp_path / "events.jsonl"
    reader = EventReader(path)
    assert not reader.read()  # no file yet
    line = step(1).to_json()
    path.write_text(line[:20])
    assert not reader.read()  # half a line: wait for the rest
    with path.open("a") as fh:
        fh.write(line[20:] + "\n" + RunPaused(1, "x").to_json() + "\n")
    batch = reader.read()
    assert batch.steps == [(1, 1.0)] and isinstance(batch.events[0], RunPaused)
    assert not reader.read()


def test_fast_reading_equals_reading_every_line(tmp_path):
    rng = random.Random(0)
    lines = []
    for n in range(1, 2001):
        lines.append(step(n, loss=rng.random() if n != 7 else float("nan")).to_json())
        if n % 100 == 0:
            lines.append(GradientsMeasured(n, 1.0, {"w": 0.5}, {"layer 0": 0.5}, [0.1, 0.2]).to_json())
        if n % 500 == 0:
            lines.append(EpochFinished(n // 500, n, 1.0, 1.1, "sample\n text", 0.8).to_json())
    lines.insert(300, '{"event": "StepFinished", "broken')  # a damaged line costs itself only
    data = ("\n".join(lines) + "\n").encode()
    fast = parse_lines(data)
    slow = [event_from_dict(json.loads(x)) for x in lines if not x.endswith("broken")]
    slow_steps = [(e.step, e.loss) for e in slow if isinstance(e, StepFinished)]
    assert len(fast.steps) == len(slow_steps) == 2000
    assert all(a == b or (a[1] != a[1] and b[1] != b[1]) for a, b in zip(fast.steps, slow_steps))
    assert fast.last_step.step == 2000 and fast.last_step.epoch == 1
    assert [type(e) for e in fast.events] == [type(e) for e in slow if not isinstance(e, StepFinished)]


def test_a_log_written_with_other_spacing_reads_the_same():
    events = [step(1, loss=2.5), GradientsMeasured(1, 1.0, {"w": 0.5}, {"layer 0": 0.5}, [0.1]),
              step(2, loss=2.0), EpochFinished(1, 2, 2.2, 2.1, "text", 0.8)]
    compact = parse_lines(("\n".join(e.to_json() for e in events) + "\n").encode())
    spaced = parse_lines(("\n".join(json.dumps(json.loads(e.to_json()), indent=None) for e in events)
                          + "\n").encode())
    assert spaced.steps == compact.steps == [(1, 2.5), (2, 2.0)]
    assert [type(e) for e in spaced.events] == [type(e) for e in compact.events] == \
        [GradientsMeasured, EpochFinished]
    assert spaced.last_step == compact.last_step == events[2]


def test_events_from_other_versions_still_open():
    assert event_from_dict({"event": "RunPaused", "step": 3, "reason": "x", "added_later": 1}).step == 3
    assert event_from_dict({"event": "Unheard", "step": 1}) is None
    assert event_from_dict({"event": "RunPaused"}) is None  # required fields missing
    assert event_from_dict({"event": "StepFinished", "step": 1, "epoch": 1, "loss": "nan", "grad_norm": 1,
                            "clipped_norm": 1, "lr": 1, "items_per_s": 1, "elapsed": 1, "progress": 0,
                            "eta": -1}).span == 1


def test_last_record_reads_the_end_of_a_big_log(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(step(n).to_json() for n in range(1, 20001)) + "\n{broken\n")
    assert last_record(path)["step"] == 20000
    assert last_record(tmp_path / "missing.jsonl") == {}


# -- liveness --------------------------------------------------------------------------------------
def write_record(run_dir, **fields):
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps({"task": "charlm", "cell": "gru", "num_layers": 1,
                                                     "hidden_size": 8}))
    (run_dir / "live.json").write_text(json.dumps(fields))


def test_states_a_reader_tells_apart(tmp_path):
    here = socket.gethostname()
    (tmp_path / "a").mkdir()
    writer = LivenessWriter(tmp_path / "a", {"step": 3})
    writer.update(write=True, state="running")
    assert run_state(tmp_path / "a").state == "running"  # this very process
    writer.update(write=True, state="paused")
    assert run_state(tmp_path / "a").state == "paused"
    writer.close(state="stopped")
    assert run_state(tmp_path / "a").state == "stopped"

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    write_record(tmp_path / "b", state="running", pid=gone.pid, host=here, heartbeat=time.time())
    b = run_state(tmp_path / "b")
    assert b.state == "dead" and "gone without a final event" in b.reason
    # a live process that is not the run (the pid was reused): its start time gives it away
    write_record(tmp_path / "c", state="running", pid=os.getpid(), host=here, pid_start=1,
                 heartbeat=time.time())
    assert run_state(tmp_path / "c").state == "dead"
    # another host: only the heartbeat's age can tell
    write_record(tmp_path / "d", state="running", pid=1, host="elsewhere", heartbeat=time.time())
    assert run_state(tmp_path / "d").state == "running"
    write_record(tmp_path / "e", state="running", pid=1, host="elsewhere", heartbeat=time.time() - 600)
    assert "no heartbeat" in run_state(tmp_path / "e").reason
    # a process gone after its final event, before its final record: the log says how it ended
    write_record(tmp_path / "f", state="running", pid=gone.pid, host=here)
    (tmp_path / "f" / "events.jsonl").write_text('{"event":"RunFinished","step":9,"reason":"completed",'
                                                 '"summary":{}}\n')
    assert run_state(tmp_path / "f").state == "finished"
    # a run directory from before live.json existed
    write_record(tmp_path / "g")
    (tmp_path / "g" / "live.json").unlink()
    assert run_state(tmp_path / "g").state == "dead"


def test_a_zombie_is_dead(tmp_path):
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 30
    while open(f"/proc/{child.pid}/stat").read().split(")")[-1].split()[0] != "Z":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    try:
        write_record(tmp_path / "z", state="running", pid=child.pid, host=socket.gethostname())
        assert run_state(tmp_path / "z").state == "dead"
    finally:
        child.wait()


EXIT_THREAD = {"x86_64": 60, "aarch64": 93}  # the exit syscall, which ends one thread, not the process


@pytest.mark.skipif(platform.machine() not in EXIT_THREAD, reason="exit syscall number unknown here")
def test_a_process_whose_leader_has_exited_but_a_thread_runs_on_is_alive(tmp_path):
    # the leader reads as a zombie while another thread still runs; the parent cannot collect it yet
    code = ("import ctypes, threading, time; threading.Thread(target=time.sleep, args=(2,)).start(); "
            f"ctypes.CDLL(None).syscall({EXIT_THREAD[platform.machine()]}, 0)")
    child = subprocess.Popen([sys.executable, "-c", code])
    try:
        stat = Path(f"/proc/{child.pid}/stat")
        deadline = time.monotonic() + 30
        while stat.read_text().split(")")[-1].split()[0] != "Z":
            assert time.monotonic() < deadline
            time.sleep(0.02)
        record = {"pid": child.pid, "host": socket.gethostname()}
        if child.poll() is None:  # the thread is still sleeping: the process has not finished
            assert process_alive(record) is True
        child.wait(30)
        assert process_alive(record) is False
    finally:
        child.kill()
        child.wait()


def test_runs_are_found_by_path_id_prefix_or_latest(tmp_path):
    for name, started in (("20260101-a", 1.0), ("20260102-b", 2.0), ("other", 3.0)):
        write_record(tmp_path / name, state="finished", started=started, step=4)
    assert resolve_run("latest", tmp_path).name == "other"
    assert resolve_run("20260101-a", tmp_path).name == "20260101-a"
    assert resolve_run(str(tmp_path / "other"), "elsewhere").name == "other"
    assert resolve_run("20260102", tmp_path).name == "20260102-b"
    with pytest.raises(RunNotFound, match="matches 2 runs"):
        resolve_run("2026", tmp_path)
    with pytest.raises(RunNotFound, match="no such run"):
        resolve_run("nothing", tmp_path)
    with pytest.raises(RunNotFound, match="no runs yet"):
        resolve_run("latest", tmp_path / "empty")
    assert [r.run_id for r in scan_runs(tmp_path)] == ["other", "20260102-b", "20260101-a"]
    assert scan_runs(tmp_path)[0].step == 4


def test_a_fixed_validation_subset_spread_over_the_split():
    ids = torch.arange(10_000)
    whole = StreamBatches.spread(ids, 4, 10, 0)
    assert whole.tokens >= len(ids) - 4
    subset = StreamBatches.spread(ids, 4, 10, 1000)
    assert subset.tokens == 1000 and len(subset) == 25
    starts = subset.x[:, 0].tolist()
    assert starts[0] == 0 and starts[-1] == len(ids) - 250 - 1  # the windows reach both ends
    assert torch.equal(subset.y, subset.x + 1)
    again = StreamBatches.spread(ids, 4, 10, 1000)
    assert torch.equal(again.x, subset.x)  # the same windows every time
    # the validation split of a 200 MB corpus: float32 window starts would run past its end
    long = torch.zeros(19_766_033, dtype=torch.int16)
    spread = StreamBatches.spread(long, 64, 100, 200_000)
    assert spread.tokens == 200_000 and len(list(spread)) == 32
