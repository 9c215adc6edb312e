"""Training throughput inside the TUI against the headless trainer, and key-to-redraw latency.

    python benchmarks/tui_overhead.py [--seconds 30] [--corpus FILE]

Throughput: the same config and time budget, headless and then inside the app (Textual's headless
driver), one after the other in this process. Latency (needs tmux): the real `workbench` in a
160x48 tmux pane, training; a key that switches tabs is sent every half second and the pane is read
until the new tab shows, so the time covers key delivery, handling and the terminal redraw.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rnn_engine import Trainer
from rnn_engine.config import default_config
from workbench.app import make_app
from workbench.messages import RunEnded
from workbench.paths import default_data


def headless(config, runs_dir: Path) -> float:
    return Trainer(config, runs_dir=runs_dir).run()["chars_per_s"]


async def in_tui(config, runs_dir: Path) -> float:
    ended: list[RunEnded] = []
    app = make_app(config, runs_dir=runs_dir)
    async with app.run_test(size=(160, 48), message_hook=lambda m: ended.append(m)
                            if isinstance(m, RunEnded) else None) as pilot:
        await pilot.press("s")
        while not ended:
            await asyncio.sleep(0.2)
        await app.workers.wait_for_complete()
    return (ended[0].summary or {}).get("chars_per_s", 0.0)


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, check=True).stdout


def key_latency(corpus: str, runs_dir: Path, presses: int = 30) -> list[tuple[str, float]]:
    """Seconds from send-keys to the pane showing the other tab, while a run trains."""
    session = "wb-latency"
    cmd = f"{sys.executable} -m workbench --corpus {corpus} --runs-dir {runs_dir} --device cpu"
    tmux("new-session", "-d", "-s", session, "-x", "160", "-y", "48", cmd)
    try:
        time.sleep(3)
        tmux("send-keys", "-t", session, "s")
        time.sleep(8)  # well into training
        marks = {"4": " run ", "1": "train loss"}  # text only that tab shows
        out = []
        for i in range(presses):
            key = "4" if i % 2 == 0 else "1"
            t0 = time.perf_counter()
            tmux("send-keys", "-t", session, key)
            while marks[key] not in tmux("capture-pane", "-p", "-t", session):
                if time.perf_counter() - t0 > 5:
                    break
            out.append((key, time.perf_counter() - t0))
            time.sleep(0.5)
        tmux("send-keys", "-t", session, "q")
        time.sleep(3)
        return out
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--corpus", default=str(default_data("charlm")))
    args = parser.parse_args()
    config = default_config("charlm", data=args.corpus, time_budget=args.seconds, device="cpu")
    with tempfile.TemporaryDirectory() as tmp:
        base = headless(config, Path(tmp) / "headless")
        tui = asyncio.run(in_tui(config, Path(tmp) / "tui"))
        lat = key_latency(args.corpus, Path(tmp) / "latency") if shutil.which("tmux") else []
    lat_ms = sorted(x * 1000 for _, x in lat)
    print(f"config: {config.cell} {config.num_layers}x{config.hidden_size}, batch {config.batch_size}, "
          f"seq {config.seq_len}, {args.seconds:.0f} s each")
    print(f"headless  {base:10,.0f} chars/s")
    print(f"TUI       {tui:10,.0f} chars/s   ({tui / base:.1%} of headless)")
    if lat_ms:
        p95 = lat_ms[min(len(lat_ms) - 1, int(0.95 * len(lat_ms)))]
        print(f"key → redraw while training (tmux): median {statistics.median(lat_ms):.1f} ms, "
              f"p95 {p95:.1f} ms, max {lat_ms[-1]:.1f} ms over {len(lat_ms)} presses")
        for key, tab in (("4", "Runs"), ("1", "Train")):
            mine = sorted(x * 1000 for k, x in lat if k == key)
            print(f"  to the {tab} tab: median {statistics.median(mine):.1f} ms, max {mine[-1]:.1f} ms")


if __name__ == "__main__":
    main()
