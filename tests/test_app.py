"""The TUI driven by Textual's pilot with a tiny real model: keys in, widgets and run files out."""

from __future__ import annotations

import asyncio
import io
import json

import pytest
from rich.console import Console
from rich.text import Text
from textual.widgets import Input, Label, Static

from rnn_engine.config import default_config
from rnn_engine.events import EpochFinished, RunFinished, RunPaused, Sampled, StepFinished
from rnn_engine.runners import ProcessRunner, ThreadRunner
from workbench.app import make_app as make_any_app
from workbench.messages import CoalescingSink, RunEnded, TrainerEvents
from workbench.widgets.sample_log import SampleLog

SIZE = (160, 48)


def make_app(config, runs_dir, runner_factory=ThreadRunner):
    # an in-thread trainer starts at once; one test below runs the real child process
    return make_any_app(config, runs_dir=runs_dir, runner_factory=runner_factory)


def tiny_config(corpus, **kw):
    base = dict(data=str(corpus), hidden_size=32, seq_len=16, batch_size=4, epochs=2, time_budget=0.0,
                sample_length=30, device="cpu", lr=1e-2)
    base.update(kw)
    return default_config("charlm", **base)


class Recorder:
    """Collects trainer events from posted messages and lets a test await a condition."""

    def __init__(self) -> None:
        self.events = []
        self.ended = []
        self._changed = asyncio.Event()

    def __call__(self, message) -> None:
        if isinstance(message, TrainerEvents):
            self.events.extend(message.events)
            self._changed.set()
        elif isinstance(message, RunEnded):
            self.ended.append(message)
            self._changed.set()

    async def until(self, predicate, timeout: float = 60.0) -> None:
        async def loop():
            while not predicate():
                self._changed.clear()
                await self._changed.wait()
        await asyncio.wait_for(loop(), timeout)

    def of(self, kind):
        return [e for e in self.events if isinstance(e, kind)]


def text_of(widget: Static) -> str:
    """What a Static shows, as plain text (tables included)."""
    console = Console(width=160, record=True, file=io.StringIO())
    content = widget.content
    console.print(Text.from_markup(content) if isinstance(content, str) else content)
    return console.export_text().strip()


async def test_start_shows_progress_samples_and_gradients(tiny_corpus, tmp_path):
    rec = Recorder()
    app = make_app(tiny_config(tiny_corpus), tmp_path)
    async with app.run_test(size=SIZE, message_hook=rec) as pilot:
        before = str(app.query_one("#train-label", Label).render())
        await pilot.press("s")
        await rec.until(lambda: rec.ended)
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert rec.ended[0].error is None
        assert "train loss" in str(app.query_one("#train-label", Label).render()) != before
        assert str(app.query_one("#val-label", Label).render()).startswith("val loss")
        assert len(rec.of(EpochFinished)) == 2
        shown = app.query_one(SampleLog).plain
        assert len(shown) == 2 and shown[0].startswith("epoch 1 · step")
        assert "before clip" in text_of(app.query_one("#grad-total"))
        assert "layer 0" in text_of(app.query_one("#grad-layers"))
        assert "ratio" in text_of(app.query_one("#grad-timestep-note"))
        status = text_of(app.query_one("#status"))
        assert "FINISHED" in status and "step" in status
        assert app.query_one("#runs-table").row_count == 1


async def test_invalid_hyperparameter_is_shown_and_nothing_starts(tiny_corpus, tmp_path):
    app = make_app(tiny_config(tiny_corpus), tmp_path / "runs")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        lr = app.query_one("#hp-lr", Input)
        lr.focus()
        lr.value = ""
        await pilot.press(*"-0.5")
        await pilot.pause()
        form = app.query_one("#form")
        assert "must be > 0" in form.error_text("lr")
        hidden = app.query_one("#hp-hidden_size", Input)
        hidden.value = "lots"
        await pilot.pause()
        assert "not a whole number" in form.error_text("hidden_size")
        await pilot.press("escape", "s")
        await pilot.pause()
        assert app.worker is None and app.state == "idle"
        assert not (tmp_path / "runs").exists()
        lr.value = "0.01"
        hidden.value = "32"
        await pilot.pause()
        assert form.error_text("lr") == ""
        assert "learning rate" in text_of(app.query_one("#note-lr"))


@pytest.mark.parametrize("runner", [ThreadRunner, ProcessRunner], ids=["thread", "process"])
async def test_pause_stops_the_step_counter_and_q_saves(tiny_corpus, tmp_path, runner):
    rec = Recorder()
    app = make_app(tiny_config(tiny_corpus, epochs=500), tmp_path, runner)
    async with app.run_test(size=SIZE, message_hook=rec) as pilot:
        await pilot.press("s")
        await rec.until(lambda: len(rec.of(StepFinished)) >= 3)
        await pilot.press("p")
        await rec.until(lambda: rec.of(RunPaused))
        paused_at = rec.of(RunPaused)[0].step
        # a query answered by the paused trainer proves it is alive and idle, without sleeping
        app.controls.request_sample("the", 0.5, 20)
        await rec.until(lambda: rec.of(Sampled))
        assert max(e.step for e in rec.of(StepFinished)) == paused_at
        assert rec.of(Sampled)[0].step == paused_at
        await pilot.press("n")  # one step while paused
        await rec.until(lambda: max(e.step for e in rec.of(StepFinished)) == paused_at + 1)
        await pilot.press("q")
        await app.workers.wait_for_complete()
    assert not app.running
    run_dir = next(p for p in tmp_path.iterdir() if p.is_dir())
    lines = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    assert lines[-1]["event"] == "RunFinished" and lines[-1]["reason"] == "stopped"
    assert (run_dir / "last.pt").exists()


async def test_live_lr_change_applies_mid_run(tiny_corpus, tmp_path):
    rec = Recorder()
    app = make_app(tiny_config(tiny_corpus, epochs=500, lr_schedule="constant"), tmp_path)
    async with app.run_test(size=SIZE, message_hook=rec) as pilot:
        await pilot.press("s")
        await rec.until(lambda: rec.of(StepFinished))
        app.query_one("#hp-lr", Input).value = "0.0005"
        await pilot.press("a")
        await rec.until(lambda: any(e.lr == 0.0005 for e in rec.of(StepFinished)))
        await pilot.press("x")
        await rec.until(lambda: rec.of(RunFinished))
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert any("applied lr → 0.0005" in line for line in app.query_one("#activity").plain)


async def test_classifier_pane_shows_top_languages(names_dir, tmp_path):
    rec = Recorder()
    cfg = default_config("names", data=str(names_dir), hidden_size=32, epochs=20, batch_size=8,
                         lr=1e-2, device="cpu", dropout=0.0)
    app = make_app(cfg, tmp_path)
    async with app.run_test(size=SIZE, message_hook=rec) as pilot:
        await pilot.press("s")
        await rec.until(lambda: rec.ended)
        await app.workers.wait_for_complete()
        await pilot.pause()
        await pilot.press("3")
        box = app.query_one("#clf-input", Input)
        box.focus()
        await pilot.press(*"Macgregorson")
        await pilot.pause()
        shown = text_of(app.query_one("#clf-results"))
        assert "Scotlandic" in shown and "Ruslandic" in shown and "%" in shown
        assert shown.index("Scotlandic") < shown.index("Ruslandic")
        assert "confusion" in text_of(app.query_one("#clf-confusion"))


async def test_bad_corpus_is_reported_and_app_keeps_running(tmp_path):
    bad = tmp_path / "empty.txt"
    bad.write_text("")
    rec = Recorder()
    app = make_app(tiny_config(bad), tmp_path / "runs")
    async with app.run_test(size=SIZE, message_hook=rec) as pilot:
        await pilot.press("s")
        await rec.until(lambda: rec.ended)
        await pilot.pause()
        assert "empty.txt: is empty" in rec.ended[0].error
        assert app.state == "failed"
        await pilot.press("question_mark")
        await pilot.pause()
        assert app.screen.__class__.__name__ == "HelpScreen"
        await pilot.press("escape")


@pytest.mark.parametrize("key,screen", [("g", "SampleScreen"), ("d", "DeviceScreen")])
async def test_dialogs_open_and_close_with_keys(tiny_corpus, tmp_path, key, screen):
    app = make_app(tiny_config(tiny_corpus), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(key)
        await pilot.pause()
        assert app.screen.__class__.__name__ == screen
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen.__class__.__name__ == "Screen"


async def test_command_palette_lists_the_actions(tiny_corpus, tmp_path):
    app = make_app(tiny_config(tiny_corpus), tmp_path)
    async with app.run_test(size=SIZE):
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert "Start a run (s)" in titles and "Generate text now (g)" in titles
        assert all(callable(c.callback) for c in app.get_system_commands(app.screen))


def test_sink_posts_a_held_step_when_nothing_follows():
    import time

    posted = []
    sink = CoalescingSink(posted.append, interval=0.1)
    step = lambda n: StepFinished(n, 1, 1.0, 1.0, 1.0, 1e-3, 100.0, 0.0, 0.0, -1.0)  # noqa: E731
    sink(step(1))  # the first event goes out at once
    sink(step(2))  # held: within the interval of the last post
    assert [e.step for m in posted for e in m.events] == [1]
    time.sleep(0.3)
    assert [e.step for m in posted for e in m.events] == [1, 2]
