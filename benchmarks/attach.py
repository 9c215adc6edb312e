"""What watching a run costs and how quickly the workbench answers, measured with real processes in tmux.

    python benchmarks/attach.py [--seconds 30] [--rounds 2] [--corpus FILE]

1. `workbench attach` to the first full frame: on a finished run whose log holds >= 200k events
   (written here, as a long run would have written it), with the machine idle and while a run
   trains on both cores; and on a run that has just started.
2. Training chars/s of one headless run with 0 and with 3 viewers attached, in alternating windows
   of --seconds each (two cores shared by the trainer and the viewers). The rate is that of the
   training steps, as in a run's summary: evaluations, which the run does on its own schedule,
   are left out; so is the first 10 s of each window, while the run's moving average settles.
3. Latency: a `pause` request's round trip to the run (the acknowledgement), the key press to the
   screen showing PAUSING, and to the screen showing PAUSED (the run has stopped at a batch boundary).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rnn_engine.config import default_config
from rnn_engine.control.client import RunClient
from rnn_engine.events import EpochFinished, GradientsMeasured, RunFinished, RunStarted, StepFinished
from rnn_engine.rundir.eventlog import EventReader
from rnn_engine.rundir.liveness import run_state
from workbench.paths import default_data

WORKBENCH = [sys.executable, "-m", "workbench"]


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True).stdout


def pane(session: str) -> str:
    return tmux("capture-pane", "-p", "-t", session)


def wait_for(session: str, text: str, timeout: float = 60.0) -> float:
    """Seconds until `text` shows in the pane."""
    t0 = time.perf_counter()
    while text not in pane(session):
        if time.perf_counter() - t0 > timeout:
            raise TimeoutError(f"{text!r} did not show in {session} within {timeout} s")
        time.sleep(0.005)
    return time.perf_counter() - t0


def open_viewer(session: str, run_dir: Path, wait_text: str) -> float:
    """Start `workbench attach` in a new 160x48 pane; seconds until `wait_text` shows."""
    cmd = " ".join([*WORKBENCH, "attach", str(run_dir)])
    t0 = time.perf_counter()
    tmux("new-session", "-d", "-s", session, "-x", "160", "-y", "48", cmd)
    wait_for(session, wait_text)
    return time.perf_counter() - t0


def close_viewer(session: str) -> None:
    tmux("kill-session", "-t", session)


def big_log(run_dir: Path, events: int = 200_000) -> int:
    """A finished run with `events` step records plus what a long run logs beside them."""
    run_dir.mkdir(parents=True)
    config = default_config("charlm", data=str(default_data("charlm")))
    (run_dir / "config.json").write_text(json.dumps(config.to_dict()))
    rng = random.Random(0)
    lines = [RunStarted(run_dir.name, str(run_dir), "charlm", config.to_dict(), "cpu", 2_517_066,
                        893_942, 99_327).to_json()]
    per_t = [float(f"{10 ** (-8 + 8 * t / 100):.4g}") for t in range(100)]  # as the trainer rounds them
    loss = 4.2
    for n in range(1, events + 1):
        loss = max(1.2, loss * 0.99997 + rng.gauss(0, 0.01))
        lines.append(StepFinished(n * 3, 1 + n // 2000, loss, 0.4, 0.4, 2e-3, 19_500.0, n * 0.25,
                                  n / events, (events - n) * 0.25, span=3).to_json())
        if n % 8 == 0:  # a gradient measurement every 2 s of a 4-records-a-second log
            lines.append(GradientsMeasured(n * 3, 0.4, {"rnn.weight_hh_l0": 0.1, "head.weight": 0.3},
                                           {"layer 0": 0.1, "layer 1": 0.2, "head": 0.3}, per_t).to_json())
        if n % 2000 == 0:
            lines.append(EpochFinished(n // 2000, n * 3, loss, loss + 0.05, "ROMEO:\nWhat light " * 15,
                                       0.8).to_json())
    lines.append(RunFinished(events * 3, "completed", {"val_loss": 1.4, "chars_per_s": 19_500.0}).to_json())
    (run_dir / "events.jsonl").write_text("\n".join(lines) + "\n")
    (run_dir / "live.json").write_text(json.dumps({"state": "finished", "pid": 1, "host": "x",
                                                   "started": time.time(), "step": events * 3}))
    return len(lines)


SETTLE = 10.0  # seconds at the start of a window left out: the run's rate is a moving average


def chars_per_s(run_dir: Path, since: float, until: float) -> float:
    """Training-step throughput between two moments of run time, from the log's step records."""
    rates = [e.items_per_s for e in _all_steps(run_dir) if since + SETTLE <= e.elapsed <= until]
    return statistics.mean(rates) if rates else 0.0


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime + stime, in clock ticks
    return total / os.sysconf("SC_CLK_TCK")


def viewer_pids() -> list[int]:
    out = subprocess.run(["pgrep", "-f", "-x", ".*python.* -m workbench attach .*"], capture_output=True,
                         text=True).stdout
    return [int(x) for x in out.split()]


def _all_steps(run_dir: Path) -> list[StepFinished]:
    out = []
    for line in (run_dir / "events.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record.get("event") == "StepFinished":
            out.append(StepFinished(**{k: v for k, v in record.items() if k != "event"}))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each throughput window")
    parser.add_argument("--rounds", type=int, default=2, help="pairs of windows (0 viewers, 3 viewers)")
    parser.add_argument("--corpus", default=str(default_data("charlm")))
    parser.add_argument("--parts", default="attach,latency,viewers",
                        help="which measurements, comma-separated (default all three)")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    if not shutil.which("tmux"):
        sys.exit("needs tmux")
    tmp = Path(tempfile.mkdtemp(prefix="wb-attach-"))
    runs = tmp / "runs"
    if "attach" in parts:
        lines = big_log(tmp / "big", 200_000)
        idle = []
        for i in range(3):
            idle.append(open_viewer(f"big{i}", tmp / "big", "step 600000"))
            close_viewer(f"big{i}")
    budget = 30 + 2 * args.rounds * args.seconds + 60
    train = subprocess.Popen([*WORKBENCH, "train", "--corpus", args.corpus, "--runs-dir", str(runs),
                              "--run-id", "live", "--time-budget", str(budget), "--device", "cpu", "--json"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    run_dir = runs / "live"
    try:
        while run_state(run_dir).state != "running" or not EventReader(run_dir / "events.jsonl").read().steps:
            time.sleep(0.1)
        if "attach" in parts:
            attach_times(run_dir, tmp, lines, idle)
        if "latency" in parts:
            latency(run_dir)
        if "viewers" in parts:
            throughput(run_dir, args.rounds, args.seconds)
    finally:
        for s in ("fresh0", "fresh1", "fresh2", "big0", "big1", "big2", "lat", "v0", "v1", "v2"):
            close_viewer(s)
        train.kill()
        train.wait()
        shutil.rmtree(tmp, ignore_errors=True)


def attach_times(run_dir: Path, tmp: Path, lines: int, idle: list[float]) -> None:
    """1. attach to the first full frame: the status line with a step, and the chart drawn."""
    fresh = [open_viewer(f"fresh{i}", run_dir, "loss over the whole run") for i in range(3)]
    for i in range(3):
        close_viewer(f"fresh{i}")
    loaded = []
    for i in range(3):
        loaded.append(open_viewer(f"big{i}", tmp / "big", "step 600000"))
        close_viewer(f"big{i}")
    size = (tmp / "big" / "events.jsonl").stat().st_size / 1e6
    print(f"attach -> first full frame: finished run with {lines:,} events ({size:.0f} MB): "
          f"{statistics.median(idle):.2f} s idle ({', '.join(f'{x:.2f}' for x in idle)}), "
          f"{statistics.median(loaded):.2f} s beside a training run "
          f"({', '.join(f'{x:.2f}' for x in loaded)}); "
          f"a run that has just started: {statistics.median(fresh):.2f} s "
          f"({', '.join(f'{x:.2f}' for x in fresh)})")



def latency(run_dir: Path) -> None:
    """3. latency, with one viewer."""
    open_viewer("lat", run_dir, "loss over the whole run")
    acks, pausing, paused = [], [], []
    with RunClient.connect(run_dir) as client:
        for _ in range(10):
            t0 = time.perf_counter()
            client.call("status")
            acks.append(time.perf_counter() - t0)
    for _ in range(5):
        t0 = time.perf_counter()
        tmux("send-keys", "-t", "lat", "p")
        wait_for("lat", "PAUSING")
        pausing.append(time.perf_counter() - t0)
        wait_for("lat", "PAUSED ")
        paused.append(time.perf_counter() - t0)
        tmux("send-keys", "-t", "lat", "p")
        wait_for("lat", "TRAINING")
        time.sleep(1.0)
    close_viewer("lat")
    print(f"request -> acknowledgement: median {statistics.median(acks) * 1000:.1f} ms; "
          f"key -> PAUSING on screen: median {statistics.median(pausing) * 1000:.0f} ms; "
          f"key -> PAUSED (run at a batch boundary): median {statistics.median(paused) * 1000:.0f} ms")



def throughput(run_dir: Path, rounds: int, seconds: float) -> None:
    """2. throughput, 0 against 3 viewers, in alternating windows of run time."""
    rates: dict[int, list[float]] = {0: [], 3: []}
    viewer_cpu: list[float] = []
    for _ in range(rounds):
        for viewers in (0, 3):
            for i in range(viewers):
                open_viewer(f"v{i}", run_dir, "loss over the whole run")
            pids = viewer_pids() if viewers else []
            cpu0, wall0 = cpu_seconds(pids), time.monotonic()
            start = _all_steps(run_dir)[-1].elapsed
            time.sleep(seconds)
            end = _all_steps(run_dir)[-1].elapsed
            if viewers:
                viewer_cpu.append((cpu_seconds(pids) - cpu0) / (time.monotonic() - wall0) / viewers)
            for i in range(viewers):
                close_viewer(f"v{i}")
            rates[viewers].append(chars_per_s(run_dir, start, end))
    zero, three = statistics.mean(rates[0]), statistics.mean(rates[3])
    print(f"training chars/s: 0 viewers {zero:,.0f} ({', '.join(f'{r:,.0f}' for r in rates[0])}); "
          f"3 viewers {three:,.0f} ({', '.join(f'{r:,.0f}' for r in rates[3])}); "
          f"3 viewers / 0 viewers = {three / zero:.1%}; each viewer used "
          f"{statistics.mean(viewer_cpu):.1%} of a core")


if __name__ == "__main__":
    main()
