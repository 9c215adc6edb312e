"""Each tab as drawn at 80×24 and 160×48, against saved pictures (pytest-textual-snapshot).

The run shown is written here event by event with fixed numbers, so the pictures do not depend on the
CPU's arithmetic or the clock; the dev extra pins the Textual, Rich and plotext that drew them. After a
deliberate change of the layout, or a new version of those, look at the differences (pytest writes an HTML
report of them), then `pytest tests/workbench/test_snapshots.py --snapshot-update` and commit the pictures.
"""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path

import pytest

from rnn_engine.events import (
    CheckpointSaved,
    EpochFinished,
    Evaluated,
    GradientsMeasured,
    RunFinished,
    RunStarted,
    StepFinished,
)
from workbench.app import make_app
from workbench.widgets.bars import Bars
from workbench.widgets.latest_strip import LatestStrip
from workbench.widgets.loss_panel import LossChart

from .test_app import tiny_config, until

SAMPLE = "Shall I compare thee to a summer's day?\nThou art more lovely and more temperate:"
STEPS = 120


def demo_run(root: Path) -> Path:
    """A finished two-epoch run of a small GRU, its history as a training process would write it."""
    run_dir = root / "runs" / "demo"
    run_dir.mkdir(parents=True)
    config = tiny_config(Path("sonnets.txt"), hidden_size=64, epochs=2)
    (run_dir / "config.json").write_text(json.dumps(config.to_dict(), indent=2))
    shown = Path("runs") / "demo"  # the paths in the log as the app shows them: relative, the same every time
    events = [RunStarted("demo", str(shown), "charlm", config.to_dict(), "cpu", 13_249, 90_000, 10_000,
                         recurrent_path="fused kernels (C++)", threads=2)]
    for epoch in (1, 2):
        for i in range(1, STEPS // 2 + 1):
            step = (epoch - 1) * STEPS // 2 + i
            loss = 1.6 + 2.6 * math.exp(-step / 25) + 0.05 * math.sin(step)
            norm, lr = 0.8 + 0.3 * math.cos(step / 7), 1e-2 * (1 - step / 200)
            events.append(StepFinished(step, epoch, loss, norm, min(norm, 0.8), lr, 12_000.0, step * 0.5,
                                       step / STEPS, (STEPS - step) * 0.5))
            if step % 30 == 0:
                events.append(GradientsMeasured(step, 0.8, {"rnn.weight_hh_l0": 0.31, "head.weight": 0.52},
                                                {"layer 0": 0.42, "head": 0.61},
                                                [0.02 * 1.08 ** t for t in range(16)]))
        val = 1.9 + 0.8 / epoch
        events.append(Evaluated(step, epoch, val, items=10_000))
        events.append(EpochFinished(epoch, step, loss, val, SAMPLE, 0.8))
        events.append(CheckpointSaved(step, str(shown / "last.pt"), "epoch"))
    summary = {"run_id": "demo", "reason": "completed", "steps": STEPS, "epochs": 2.0, "elapsed": 60.0,
               "train_loss": 1.71, "device": "cpu", "parameters": 13_249, "world_size": 1, "impl": "scratch",
               "precision": "fp32", "val_loss": 2.3, "best_val_loss": 2.3, "val_chars": 10_000,
               "chars_per_s": 12_000.0}
    events.append(RunFinished(STEPS, "completed", summary))
    with (run_dir / "events.jsonl").open("w") as log:
        for e in events:
            log.write(e.to_json() + "\n")
    record = {"version": 1, "pid": 0, "host": "elsewhere", "state": "finished", "run_id": "demo",
              "task": "charlm", "step": STEPS, "device": "cpu", "world_size": 1, "started": 0.0,
              "heartbeat": 60.0, "parameters": 13_249, "items_per_s": 12_000.0, "best_val_loss": 2.3,
              "reason": "completed"}
    (run_dir / "live.json").write_text(json.dumps(record))
    return run_dir


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
@pytest.mark.parametrize("tab", ["1", "2", "3", "4", "5"])
def test_each_tab_as_drawn(snap_compare, tmp_path, monkeypatch, tab, size):
    monkeypatch.chdir(tmp_path)  # the runs directory, as the app shows it, is ./runs
    run_dir = demo_run(tmp_path)
    app = make_app(tiny_config(Path("sonnets.txt")), "runs", attach=Path("runs") / run_dir.name, bell=False)

    async def shown(pilot) -> None:
        await until(pilot, lambda: app.session.state == "finished", what="the replay")
        await until(pilot, lambda: app.query_one("#runs-table").row_count == 1, what="the runs list")
        # the panes redraw on a timer (PANES_EVERY): the picture is taken once they show the last step
        await until(pilot, lambda: app.query_one(LatestStrip).grad != "gradient norm —", what="the panes")
        await pilot.press(tab)
        await pilot.pause(0.5)

    assert snap_compare(app, terminal_size=size, run_before=shown)


def test_the_charts_fill_a_wide_pane_whatever_size_the_terminal_variables_say(tmp_path, monkeypatch):
    # plotext sized its plots to COLUMNS/LINES (or the tty); with COLUMNS=80 a 94-column pane showed
    # an 80-column chart, and sparklines given before the first layout kept that layout's width
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "60")
    monkeypatch.setenv("LINES", "12")
    run_dir = demo_run(tmp_path)
    app = make_app(tiny_config(Path("sonnets.txt")), "runs", attach=Path("runs") / run_dir.name, bell=False)

    async def go() -> None:
        async with app.run_test(size=(160, 48)) as pilot:
            await until(pilot, lambda: app.session.state == "finished", what="the replay")
            await pilot.pause(0.2)
            chart = app.query_one(LossChart)
            drawn = chart.render().plain.splitlines()
            assert chart.size.width > 80 and max(len(line) for line in drawn) == chart.size.width
            spark = app.query_one("#train-spark", Bars)
            assert spark.size.width > 60
            bars = spark.render().plain.splitlines()
            assert max(len(line.rstrip()) for line in bars) >= spark.size.width - 2

    asyncio.run(go())
