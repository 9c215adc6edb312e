"""The TUI driven by Textual's pilot: keys in; real run processes, their files and the widgets out."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess

import pytest
from rich.console import Console
from rich.text import Text
from textual.widget import Widget
from textual.widgets import Input, Label, Select, Static

from rnn_engine import Trainer
from rnn_engine.config import AUTO_FIELDS, default_config
from rnn_engine.rundir.launch import training_argv
from rnn_engine.rundir.liveness import run_state
from workbench.app import make_app
from workbench.widgets.hyper_form import HyperparameterForm
from workbench.widgets.sample_log import SampleLog
from workbench.widgets.status_line import StatusLine

from ..conftest import kill_runs, logged_steps, track, wait_until, workbench

SIZE = (160, 48)


def tiny_config(corpus, **kw):
    base = dict(data=str(corpus), hidden_size=24, num_layers=1, dropout=0.0, seq_len=16, batch_size=4,
                epochs=2, time_budget=0.0, sample_length=30, device="cpu", lr=1e-2, precision="fp32")
    base.update(kw)
    return default_config("charlm", **base)


def text_of(widget: Widget) -> str:
    """What a Static, or a widget that renders a Rich text, shows, as plain text (tables included)."""
    console = Console(width=160, record=True, file=io.StringIO())
    content = widget.content if isinstance(widget, Static) else widget.render()
    console.print(Text.from_markup(content) if isinstance(content, str) else content)
    return console.export_text().strip()


async def until(pilot, condition, timeout: float = 90.0, what: str = "condition") -> None:
    """Let the app run until `condition` holds (runs are other processes: there is nothing to await)."""
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not reached within {timeout:.0f} s")
        await pilot.pause(0.05)


def steps_of(app) -> int:
    """Steps the shown run has logged."""
    return logged_steps(app.session.view.run_dir)


class Reaper:
    """Ends every run process a test started, through the app or otherwise, even when it fails."""

    def __init__(self, root) -> None:
        self.root = root
        self.apps = []
        track(root)

    def watch(self, app):
        self.apps.append(app)
        track(app=app)
        return app

    def end(self) -> None:
        kill_runs(self.root, [p for app in self.apps for p in app.launched])


@pytest.fixture
def reaper(tmp_path):
    r = Reaper(tmp_path)
    try:
        yield r
    finally:
        r.end()


def notes_of(app) -> list[str]:
    notes: list[str] = []
    original = app.notify

    def record(message, *args, **kw):
        notes.append(str(message))
        return original(message, *args, **kw)

    app.notify = record
    return notes


def ctl(*args: str) -> subprocess.CompletedProcess:
    return workbench("ctl", *args)


# -- starting runs from the app ------------------------------------------------------------------
async def test_start_shows_progress_samples_and_gradients(tiny_corpus, tmp_path, reaper):
    app = reaper.watch(make_app(tiny_config(tiny_corpus), tmp_path / "runs"))
    async with app.run_test(size=SIZE) as pilot:
        before = str(app.query_one("#train-label", Label).render())
        await pilot.press("s")
        await until(pilot, lambda: app.session.state == "finished", what="the run to finish")
        await until(pilot, lambda: app.query_one("#runs-table").row_count == 1, what="the runs list")
        assert "train loss" in str(app.query_one("#train-label", Label).render()) != before
        assert str(app.query_one("#val-label", Label).render()).startswith("val loss")
        shown = app.query_one(SampleLog).plain
        assert len(shown) == 2 and shown[0].startswith("epoch 1 · step")
        assert "before clip" in text_of(app.query_one("#grad-total"))
        assert "layer 0" in text_of(app.query_one("#grad-layers"))
        assert "ratio" in text_of(app.query_one("#grad-timestep-note"))
        status = text_of(app.query_one("#status"))
        assert "FINISHED" in status and "step" in status
        activity = "\n".join(app.query_one("#activity").plain)
        assert "same as: workbench train --corpus" in activity and "run completed" in activity
    run_dir = app.session.view.run_dir
    assert run_state(run_dir).state == "finished" and (run_dir / "last.pt").exists()
    assert app.session.view.process.wait(30) == 0


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
        assert app.session.view is None and app.session.state == "idle" and not app.launched
        assert not (tmp_path / "runs").exists()
        lr.value = "0.01"
        hidden.value = "32"
        await pilot.pause()
        assert form.error_text("lr") == ""
        assert "learning rate" in text_of(app.query_one("#note-lr"))
        app.query_one("#hp-bidirectional").value = "yes"  # a cross-field rule: an LM reads one way
        await pilot.press("s")
        await pilot.pause()
        assert "reads one way" in form.error_text("bidirectional") and app.session.view is None


async def test_q_stops_and_saves_by_default(tiny_corpus, tmp_path, reaper):
    app = reaper.watch(make_app(tiny_config(tiny_corpus, epochs=100_000), tmp_path / "runs"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("s")
        await until(pilot, lambda: app.session.state == "running" and steps_of(app) > 2)
        await pilot.press("q")
        await until(pilot, lambda: app.screen.__class__.__name__ == "QuitScreen")
        await pilot.press("enter")  # the default: stop the run and save
        await until(pilot, lambda: not app.is_running, what="the app to close after saving")
    run_dir = app.session.view.run_dir
    assert app.session.view.process.wait(60) == 0
    lines = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    assert lines[-1]["event"] == "RunFinished" and lines[-1]["reason"] == "stopped"
    assert (run_dir / "last.pt").exists() and run_state(run_dir).state == "stopped"


async def test_a_run_started_here_outlives_the_app(tiny_corpus, tmp_path, reaper):
    app = reaper.watch(make_app(tiny_config(tiny_corpus, epochs=100_000), tmp_path / "runs"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("s")
        await until(pilot, lambda: app.session.state == "running")
        await pilot.press("q")
        await until(pilot, lambda: app.screen.__class__.__name__ == "QuitScreen")
        await pilot.press("l")
        await until(pilot, lambda: not app.is_running)
    run_dir, process = app.session.view.run_dir, app.session.view.process
    assert "workbench attach" in app.farewell
    # a session of its own: a hang-up sent to this process group does not reach it
    assert os.getpgid(process.pid) == process.pid != os.getpgid(0)
    step = logged_steps(run_dir)
    wait_until(lambda: logged_steps(run_dir) > step + 3, 60, "steps after the app closed", process)
    stopped = ctl(str(run_dir), "stop", "--wait")
    assert stopped.returncode == 0, stopped.stderr
    assert "stopped" in stopped.stdout and process.wait(60) == 0
    assert (run_dir / "last.pt").exists()


async def test_live_lr_change_applies_mid_run(tiny_corpus, tmp_path, reaper):
    app = reaper.watch(make_app(tiny_config(tiny_corpus, epochs=100_000, lr_schedule="constant"),
                                tmp_path / "runs"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("s")
        await until(pilot, lambda: app.session.state == "running")
        app.query_one("#hp-lr", Input).value = "0.0005"
        await pilot.press("a")
        applied = lambda: any("applied lr → 0.0005" in x for x in app.query_one("#activity").plain)  # noqa: E731
        await until(pilot, applied)
        notes = notes_of(app)
        app.query_one("#hp-hidden_size", Input).value = "1e3"  # wrong, and fixed for the run anyway
        app.query_one("#hp-clip", Input).value = "2"
        await pilot.press("a")  # clip applies; hidden_size is named, and its error shown beside it
        await until(pilot, lambda: any("applied clip → 2" in x for x in app.query_one("#activity").plain))
        assert any("Sent clip; hidden_size needs a new run" in n for n in notes), notes
        assert "not a whole number" in app.query_one("#form").error_text("hidden_size")
        app.query_one("#hp-hidden_size", Input).value = "99"
        app.query_one("#hp-top_k", Input).value = "-3"
        await pilot.press("a")  # invalid: shown beside the field, nothing is sent
        await pilot.pause()
        assert "must be >= 0" in app.query_one("#form").error_text("top_k")
        await pilot.press("x")
        await until(pilot, lambda: app.session.state == "stopped")
        assert app.session.config.lr == 0.0005
        # r forks it with the settings it had when it stopped, whatever the form holds now
        app.query_one("#hp-lr", Input).value = "0.003"
        parent = app.session.view.run_dir
        await pilot.press("r")
        await until(pilot, lambda: app.session.view.run_dir != parent and app.session.state == "running")
        forked = "\n".join(app.query_one("#activity").plain)
        assert f"resumed from {parent.name} at step" in forked and "changed live there: clip " in forked
        assert "lr 0.01 → 0.0005" in forked, forked
        assert app.session.config.lr == 0.0005
        await pilot.press("x")
        await until(pilot, lambda: app.session.state == "stopped")


async def test_bad_corpus_is_reported_and_app_keeps_running(tmp_path, reaper):
    bad = tmp_path / "empty.txt"
    bad.write_text("")
    app = reaper.watch(make_app(tiny_config(bad), tmp_path / "runs"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("s")
        await until(pilot, lambda: app.session.state == "failed")
        assert any("empty.txt: is empty" in line for line in app.query_one("#activity").plain)
        assert list((tmp_path / "runs").iterdir()) == []  # nothing left behind
        await pilot.press("question_mark")
        await pilot.pause()
        assert app.screen.__class__.__name__ == "HelpScreen"
        await pilot.press("escape")


# -- attaching -----------------------------------------------------------------------------------
async def test_attach_pause_step_resume_then_leave_and_the_run_goes_on(headless, tiny_corpus, tmp_path):
    process, run_dir = headless("a")
    app = make_app(tiny_config(tiny_corpus), tmp_path / "runs", attach=run_dir)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.session.state == "running")
        await pilot.press("p")
        await until(pilot, lambda: app.session.state == "paused", what="paused")
        paused = logged_steps(run_dir)
        await pilot.press("n")
        await until(pilot, lambda: logged_steps(run_dir) == paused + 1, what="one step")
        assert app.session.state == "paused"
        await pilot.press("p")
        await until(pilot, lambda: app.session.state == "running" and logged_steps(run_dir) > paused + 2)
        await pilot.press("q")
        await until(pilot, lambda: app.screen.__class__.__name__ == "QuitScreen")
        await pilot.press("enter")  # a run this window did not start: leaving it is the default
        await until(pilot, lambda: not app.is_running)
    step = logged_steps(run_dir)
    wait_until(lambda: logged_steps(run_dir) > step + 3, 60, "steps after the viewer left", process)
    stopped = ctl(str(run_dir), "stop", "--wait")
    assert stopped.returncode == 0, stopped.stderr
    assert process.poll() == 0  # --wait returns once the process has exited, not just acknowledged
    assert (run_dir / "last.pt").exists()


async def test_a_second_viewer_attaches_while_the_first_is_open(headless, tiny_corpus, tmp_path):
    process, run_dir = headless("two")
    first = make_app(tiny_config(tiny_corpus), tmp_path / "runs", attach=run_dir)
    second = make_app(tiny_config(tiny_corpus), tmp_path / "runs", attach=run_dir)
    async with first.run_test(size=SIZE) as p1:
        await until(p1, lambda: first.session.state == "running")
        async with second.run_test(size=SIZE) as p2:
            await until(p2, lambda: second.session.state == "running")
            await p2.press("p")  # the second viewer pauses; the first sees it
            await until(p1, lambda: first.session.state == "paused" and second.session.state == "paused")
            await p1.press("p")
            await until(p2, lambda: second.session.state == "running" and first.session.state == "running")
            shown = [str(app.query_one("#train-label", Label).render()) for app in (first, second)]
            assert all(s.startswith("train loss ") for s in shown)
        # the second viewer is gone; the first still follows
        step = logged_steps(run_dir)
        await until(p1, lambda: first.query_one("#status").last.step > step)
    assert process.poll() is None


async def test_a_killed_run_reads_dead(headless, tiny_corpus, tmp_path):
    process, run_dir = headless("victim")
    app = make_app(tiny_config(tiny_corpus), tmp_path / "runs", attach=run_dir)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.session.state == "running")
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(30)
        await until(pilot, lambda: app.session.state == "dead")
        assert "DEAD" in text_of(app.query_one("#status"))
        await pilot.press("p")  # a dead run takes no commands; the app says so and carries on
        await pilot.pause()
        assert app.session.state == "dead"


async def test_a_finished_run_opens_read_only_and_r_forks_it(tiny_corpus, tmp_path, reaper):
    trainer = Trainer(tiny_config(tiny_corpus), runs_dir=tmp_path / "runs", run_id="done")
    trainer.run()
    app = reaper.watch(make_app(tiny_config(tiny_corpus), tmp_path / "runs", attach=trainer.run_dir))
    notes = notes_of(app)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.session.state == "finished")
        assert str(app.query_one("#val-label", Label).render()).startswith("val loss")
        assert len(app.query_one(SampleLog).plain) == 2
        await pilot.press("p")
        await pilot.pause()
        assert any("takes no commands" in n for n in notes) and app.session.state == "finished"
        app.query_one("#hp-epochs", Input).value = "100000"
        await pilot.press("r")
        await until(pilot, lambda: app.session.view.run_dir != trainer.run_dir
                    and app.session.state == "running")
        assert any("resumed at step" in line for line in app.query_one("#activity").plain)
        await pilot.press("x")
        await until(pilot, lambda: app.session.state == "stopped")


async def test_runs_tab_lists_runs_and_enter_attaches(tiny_corpus, tmp_path):
    for run_id in ("first", "second"):
        Trainer(tiny_config(tiny_corpus, epochs=1), runs_dir=tmp_path / "runs", run_id=run_id).run()
    app = make_app(tiny_config(tiny_corpus), tmp_path / "runs")
    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one("#runs-table")
        await until(pilot, lambda: table.row_count == 2)
        await pilot.press("4")
        await pilot.press("down", "enter")
        await until(pilot, lambda: app.session.view is not None and app.session.state == "finished")
        assert app.session.view.run_id == table.runs[1].run_id
        assert app.query_one("#tabs").active == "train"


async def test_classifier_answers_live_then_from_the_saved_model(names_dir, tmp_path, reaper):
    cfg = default_config("names", data=str(names_dir), hidden_size=32, epochs=100_000, batch_size=8,
                         lr=1e-2, device="cpu", dropout=0.0, eval_interval=0.0, precision="fp32")
    app = reaper.watch(make_app(cfg, tmp_path / "runs"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("s")
        await until(pilot, lambda: app.session.state == "running" and steps_of(app) > 150)
        await until(pilot, lambda: "names/s" in text_of(app.query_one(StatusLine)))
        await pilot.press("3")
        results = app.query_one("#clf-results")
        # the tab says which model answers, not that there is none
        assert f"run {app.session.view.run_id} is running: type a surname" in text_of(results)
        box = app.query_one("#clf-input", Input)
        box.focus()
        await pilot.press(*"Macgregorson")
        await until(pilot, lambda: "Scotlandic" in text_of(results) and "%" in text_of(results))
        shown = text_of(results)
        assert shown.index("Scotlandic") < shown.index("Ruslandic")
        confusion = text_of(app.query_one("#clf-confusion"))
        assert "confusion" in confusion and "acc" in confusion and "%" in confusion.split("acc", 2)[-1]
        box.value = ""  # an emptied box takes its answer away
        await pilot.pause()
        assert "Scotlandic" not in text_of(results) and "type a surname" in text_of(results)
        await pilot.press("escape", "x")
        await until(pilot, lambda: app.session.state == "stopped")
        assert "(stopped): type a surname above and its saved model answers" in text_of(results)
        box.focus()
        await pilot.press(*"Petrov")  # the run has ended: the saved model answers
        await until(pilot, lambda: text_of(results).startswith("Ruslandic"), timeout=60)


@pytest.mark.parametrize("key,screen", [("g", "SampleScreen"), ("d", "DeviceScreen")])
async def test_dialogs_open_and_close_with_keys(tiny_corpus, tmp_path, key, screen):
    app = make_app(tiny_config(tiny_corpus), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(key)
        await until(pilot, lambda: app.screen.__class__.__name__ == screen, timeout=30)
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen.__class__.__name__ == "Workspace"


async def test_command_palette_lists_the_actions(tiny_corpus, tmp_path):
    app = make_app(tiny_config(tiny_corpus), tmp_path)
    async with app.run_test(size=SIZE):
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert "Start a run (s)" in titles and "Generate text now (g)" in titles
        assert all(callable(c.callback) for c in app.get_system_commands(app.screen))


async def test_sample_from_a_live_run_through_the_protocol(headless, tiny_corpus, tmp_path):
    _, run_dir = headless("sampled")
    app = make_app(tiny_config(tiny_corpus), tmp_path / "runs", attach=run_dir)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.session.state == "running")
        await pilot.press("g")
        await until(pilot, lambda: app.screen.__class__.__name__ == "SampleScreen")
        await pilot.press(*"the ", "enter")
        shown = lambda: any(s.startswith("sample · step") for s in app.query_one(SampleLog).plain)  # noqa: E731
        await until(pilot, shown)
        assert any("\nthe " in s for s in app.query_one(SampleLog).plain)


async def test_device_dialog_lists_the_runs_devices_with_the_reasons_for_absent_ones(headless, tiny_corpus,
                                                                                    tmp_path):
    from rnn_engine.training.devices import available_devices

    _, run_dir = headless("moved")
    app = make_app(tiny_config(tiny_corpus), tmp_path / "runs", attach=run_dir)
    notes = notes_of(app)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.session.state == "running")
        await pilot.press("d")  # the run says which devices its machine has (here the same machine)
        await until(pilot, lambda: app.screen.__class__.__name__ == "DeviceScreen")
        options = app.screen.query_one("#device-options")
        for name, reason in available_devices().items():
            option = options.get_option(name)
            assert option.disabled == bool(reason)
            assert (reason in str(option.prompt)) if reason else str(option.prompt) == name
        await pilot.press("enter")  # cpu, the highlighted first option, where the run is
        await until(pilot, lambda: any("on cpu already" in n for n in notes), what="the notice")
        assert not any("Moving to" in n for n in notes)  # nothing was sent


def inside_head(app) -> str:
    return text_of(app.query_one("#inside-head"))


async def test_inside_tab_shades_a_unit_and_its_keys_move_the_selection(tiny_corpus, tmp_path):
    trainer = Trainer(tiny_config(tiny_corpus, num_layers=2), runs_dir=tmp_path / "runs", run_id="done")
    trainer.run()
    app = make_app(tiny_config(tiny_corpus), tmp_path / "runs", attach=trainer.run_dir)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.session.state == "finished")
        inside = app.query_one("#inside-view")
        await pilot.press("5")  # the latest sample, read by the saved model
        await until(pilot, lambda: "by selectivity" in inside_head(app), what="an inspection")
        assert inside.rank == 0 and "reading the latest sample" in inside_head(app)
        assert text_of(app.query_one("#inside-text"))
        assert "‖∂L_T/∂h_t‖" in text_of(app.query_one("#inside-grad"))
        ranked = inside.result["ranked"]
        await pilot.press("u")
        assert inside.selected == tuple(ranked[1][:2]) and "#2 of 48" in inside_head(app)
        layer, unit = inside.selected
        await pilot.press("right")
        assert inside.selected == (layer, (unit + 1) % 24)
        await pilot.press("down")
        assert inside.selected == (1 - layer, (unit + 1) % 24)
        await pilot.press("G")
        assert "gate saturation" in inside_head(app)
        assert "layer 1 gate z" in text_of(app.query_one("#inside-text"))
        await pilot.press("G", "c")
        await until(pilot, lambda: "validation excerpt" in inside_head(app), what="the validation text")
        assert inside.rank == 0  # another text starts from its own most selective unit
        await pilot.press("e", *"a new text", "enter")
        await until(pilot, lambda: "reading typed text" in inside_head(app), what="the typed text")
        assert text_of(app.query_one("#inside-text")).startswith("a new text")
        assert app.focused is inside  # back on the pane: its keys work again


async def test_inside_tab_reads_a_live_run_through_the_protocol(headless, tiny_corpus, tmp_path):
    _, run_dir = headless("inside")
    app = make_app(tiny_config(tiny_corpus), tmp_path / "runs", attach=run_dir)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.session.state == "running")
        await pilot.press("5", "e", *"the run reads this", "enter")
        await until(pilot, lambda: "reading typed text" in inside_head(app), what="the run's answer")
        assert app.session.live and len(app.query_one("#inside-view").result["ranked"]) == 24


async def test_inside_tab_reads_a_name_letter_by_letter(names_dir, tmp_path):
    cfg = default_config("names", data=str(names_dir), hidden_size=16, epochs=2, batch_size=8,
                         device="cpu", dropout=0.0, precision="fp32")
    trainer = Trainer(cfg, runs_dir=tmp_path / "runs", run_id="names")
    trainer.run()
    app = make_app(cfg, tmp_path / "runs", attach=trainer.run_dir)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.session.state == "finished")
        await pilot.press("5")
        await until(pilot, lambda: "type a name" in inside_head(app), what="the names hint")
        await pilot.press("e", *"Petrov", "enter")
        await until(pilot, lambda: "letter by letter" in inside_head(app), what="the letters")
        rows = text_of(app.query_one("#inside-text")).splitlines()
        assert len(rows) == 6 and rows[0].split()[0] == "P" and "Ruslandic" in rows[-1]
        # a classifier has no units to step through: the footer offers only the keys that act
        offered = {b.binding.action for b in app.screen.active_bindings.values() if b.enabled}
        assert "edit" in offered and not {"ranked(1)", "gates", "unit(1)"} & offered, offered


async def test_k_checks_the_model_against_torch_nn(tiny_corpus, tmp_path):
    trainer = Trainer(tiny_config(tiny_corpus), runs_dir=tmp_path / "runs", run_id="done")
    trainer.run()
    app = make_app(tiny_config(tiny_corpus), tmp_path / "runs", attach=trainer.run_dir)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.session.state == "finished")
        await pilot.press("k")
        activity = app.query_one("#activity")
        await until(pilot, lambda: any("against torch.nn.GRU" in line for line in activity.plain),
                    what="the check's report")
        line = next(line for line in activity.plain if "against torch.nn.GRU" in line)
        assert "max |Δ output|" in line and "max |Δ gradient|" in line


async def test_choosing_a_preset_fills_in_its_tutorials_settings(names_dir, tmp_path):
    cfg = default_config("names", data=str(names_dir), device="cpu")
    app = make_app(cfg, tmp_path / "runs")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        app.query_one("#hp-preset").value = "tutorial-concat-rnn"
        await pilot.pause()
        form = app.query_one("#form")
        assert form.values()["arch"] == "concat-rnn" and form.values()["batch_size"] == "1"
        assert form.read().preset == "tutorial-concat-rnn"
        app.query_one("#hp-preset").value = "tutorial-index-rnn"  # a language model's preset
        await pilot.pause()
        assert "train" in form.error_text("preset") and form.values()["arch"] == "concat-rnn"


async def test_runs_tab_compares_the_marked_runs(tiny_corpus, tmp_path):
    for run_id, cell in (("first", "gru"), ("second", "lstm")):
        config = tiny_config(tiny_corpus, epochs=2, cell=cell)
        Trainer(config, runs_dir=tmp_path / "runs", run_id=run_id).run()
    app = make_app(tiny_config(tiny_corpus), tmp_path / "runs")
    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one("#runs-table")
        await until(pilot, lambda: table.row_count == 2)
        await pilot.press("4", "space", "down", "space")
        assert len(table.marked) == 2
        await pilot.press("c")
        await until(pilot, lambda: app.screen.__class__.__name__ == "CompareScreen")
        figures = app.screen.query_one("#compare-table")
        await until(pilot, lambda: figures.row_count == 2, what="the comparison table")
        rows = [[str(c) for c in figures.get_row_at(i)] for i in range(2)]
        assert {r[0] for r in rows} == {"first", "second"}
        assert {r[1] for r in rows} == {"gru 1x24", "lstm 1x24"}
        assert all(r[2] != "—" and "chars/s" in r[5] for r in rows)
        assert "against training seconds" in text_of(app.screen.query_one("#compare-chart"))
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen.__class__.__name__ == "Workspace"


async def test_quit_dialog_escape_stays_and_s_stops_and_saves(tiny_corpus, tmp_path, reaper):
    app = reaper.watch(make_app(tiny_config(tiny_corpus, epochs=100_000), tmp_path / "runs"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("s")
        await until(pilot, lambda: app.session.state == "running" and steps_of(app) > 1)
        await pilot.press("q")
        await until(pilot, lambda: app.screen.__class__.__name__ == "QuitScreen")
        await pilot.press("escape")  # neither: back to the workbench, the run untouched
        await until(pilot, lambda: app.screen.__class__.__name__ == "Workspace")
        step = steps_of(app)
        await until(pilot, lambda: steps_of(app) > step + 2, what="training on")
        assert app.is_running and app.session.state == "running"
        await pilot.press("q")
        await until(pilot, lambda: app.screen.__class__.__name__ == "QuitScreen")
        await pilot.press("s")
        await until(pilot, lambda: not app.is_running, what="the app to close after saving")
    assert app.session.view.process.wait(60) == 0 and run_state(app.session.view.run_dir).state == "stopped"


async def test_function_keys_start_pause_step_and_stop(tiny_corpus, tmp_path, reaper):
    app = reaper.watch(make_app(tiny_config(tiny_corpus, epochs=100_000), tmp_path / "runs"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f5")
        await until(pilot, lambda: app.session.state == "running" and steps_of(app) > 0)
        run_dir = app.session.view.run_dir
        await pilot.press("f6")
        await until(pilot, lambda: run_state(run_dir).state == "paused", what="paused by F6")
        step = logged_steps(run_dir)
        await pilot.press("f8")
        await until(pilot, lambda: logged_steps(run_dir) == step + 1, what="one step by F8")
        await pilot.press("f6")
        await until(pilot, lambda: run_state(run_dir).state == "running", what="resumed by F6")
        await pilot.press("f1")
        await until(pilot, lambda: app.screen.__class__.__name__ == "HelpScreen")
        await pilot.press("escape")
        await pilot.press("f7")
        await until(pilot, lambda: app.session.state == "stopped", what="stopped by F7")
    assert run_state(run_dir).state == "stopped" and (run_dir / "last.pt").exists()


async def test_v_evaluates_the_whole_validation_split(headless, tiny_corpus, tmp_path):
    _, run_dir = headless("full", "--val-chars", "64")
    app = make_app(tiny_config(tiny_corpus), tmp_path / "runs", attach=run_dir)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.session.state == "running")
        await pilot.press("v")
        activity = app.query_one("#activity")
        await until(pilot, lambda: any("whole validation split" in line for line in activity.plain),
                    what="the full evaluation in the log")
    full = [json.loads(x) for x in (run_dir / "events.jsonl").read_text().splitlines()
            if '"Evaluated"' in x]
    assert full and full[-1]["full"] and full[-1]["items"] > 64  # more than the routine subset reads


async def test_t_switches_the_task_of_the_next_run(tiny_corpus, tmp_path):
    app = make_app(tiny_config(tiny_corpus), tmp_path / "runs")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("t")
        await pilot.pause()
        form = app.query_one("#form")
        assert app.config.task == "names" and form.read().task == "names"
        assert app.config.data.endswith("names") and form.values()["hidden_size"] == "256"
        await pilot.press("t")
        await pilot.pause()
        assert app.config.task == "charlm" and form.read().task == "charlm"


async def test_attaching_a_run_whose_files_are_damaged_says_so(tiny_corpus, tmp_path):
    run_dir = tmp_path / "runs" / "broken"
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text("{not json")
    (run_dir / "events.jsonl").write_text('{"event": "RunStarted", "broken\n\x00\x01\n')
    (run_dir / "live.json").write_text("[1, 2")
    app = make_app(tiny_config(tiny_corpus), tmp_path / "runs", attach=run_dir)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.session.state == "dead", what="the run read as dead")
        activity = "\n".join(app.query_one("#activity").plain)
        assert "no process record" in activity
        await pilot.press("4")  # and the app goes on: the Runs tab, the help screen
        await pilot.press("question_mark")
        await until(pilot, lambda: app.screen.__class__.__name__ == "HelpScreen")


def test_attach_to_a_missing_run_is_one_line(tmp_path):
    for args, needle in ((["attach", "nothing", "--runs-dir", str(tmp_path)], "attach: nothing: no such run"),
                         (["attach", "latest", "--runs-dir", str(tmp_path)], "no runs yet")):
        r = workbench(*args)
        assert r.returncode == 2 and r.stderr.count("\n") == 1 and needle in r.stderr, r.stderr


async def test_smoothing_and_log_scale_keys_redraw_the_loss_charts(tiny_corpus, tmp_path):
    for run_id in ("first", "second"):
        Trainer(tiny_config(tiny_corpus, epochs=2), runs_dir=tmp_path / "runs", run_id=run_id).run()
    app = make_app(tiny_config(tiny_corpus), tmp_path / "runs", attach=tmp_path / "runs" / "first")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.session.state == "finished")
        chart = app.query_one("#loss-plot")
        await until(pilot, lambda: "smoothing 0.6" in text_of(chart), what="the chart's title")
        await pilot.press("right_square_bracket", "right_square_bracket", "l")
        assert "smoothing 0.9 · log scale" in text_of(chart) and "train (smoothed)" in text_of(chart)
        for _ in range(6):
            await pilot.press("left_square_bracket")
        assert "no smoothing · log scale" in text_of(chart) and "train (smoothed)" not in text_of(chart)
        # the session's settings hold on the compare screen too, and change there for both
        await pilot.press("4", "space", "down", "space", "c")
        await until(pilot, lambda: app.screen.__class__.__name__ == "CompareScreen")
        compare = app.screen.query_one("#compare-chart")
        await until(pilot, lambda: "no smoothing · log scale" in text_of(compare), what="the comparison")
        await pilot.press("l", "right_square_bracket")
        assert "smoothing 0.3" in text_of(compare) and "log scale" not in text_of(compare)
        await pilot.press("escape", "1")
        assert app.workspace.chart.describe() == "smoothing 0.3"


async def test_a_run_that_ends_is_told_with_a_notice_and_the_bell(headless, tiny_corpus, tmp_path):
    _, run_dir = headless("watched")
    app = make_app(tiny_config(tiny_corpus), tmp_path / "runs", bell=True)  # not following that run
    notes = notes_of(app)
    rings = []
    app.bell = lambda: rings.append(1)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.query_one("#runs-table").row_count == 1, what="the runs list")
        stopped = ctl(str(run_dir), "stop", "--wait")
        assert stopped.returncode == 0, stopped.stderr
        await until(pilot, lambda: any("Run watched stopped at step" in n for n in notes), what="the notice")
        assert len(rings) == 1
        assert any("Run watched stopped" in line for line in app.query_one("#activity").plain)
    quiet = make_app(tiny_config(tiny_corpus), tmp_path / "runs", bell=False)
    assert not quiet.bell_on


async def test_a_sweep_started_from_the_form_shows_its_trials_and_opens_one(tiny_corpus, tmp_path, reaper):
    from textual.widgets import DataTable

    app = reaper.watch(make_app(tiny_config(tiny_corpus, epochs=1, sample_length=0), tmp_path / "runs"))
    reaper.root = tmp_path  # the sweep's trials are runs under tmp_path/runs too
    notes = notes_of(app)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("W")  # first: the sweep column beside the fields
        form = app.query_one("#form")
        assert form.sweeping and app.query_one("#tabs").active == "hyper"
        app.query_one("#sw-lr", Input).value = "3e-3..3e-2 log"
        app.query_one("#sw-cell", Input).value = "gru rnn tcn"  # one choice no run takes
        await pilot.pause()
        assert "'tcn' cannot be used" in form.error_text("cell")
        await pilot.press("W")
        assert app.screen.__class__.__name__ == "Workspace" and any("Not started" in n for n in notes)
        app.query_one("#sw-cell", Input).value = "gru | rnn"
        await pilot.pause()
        assert form.error_text("cell") == ""
        await pilot.press("W")
        await until(pilot, lambda: app.screen.__class__.__name__ == "SweepStartScreen")
        app.screen.query_one("#sw-study", Input).value = "formed"
        trials = app.screen.query_one("#sw-trials", Input)
        trials.value = "2"
        trials.focus()
        await pilot.press("enter")
        await until(pilot, lambda: app.screen.__class__.__name__ == "SweepScreen")
        table = app.screen.query_one("#sweep-table", DataTable)
        head = app.screen.query_one("#sweep-head")
        await until(pilot, lambda: "2 of 2 trials: 2 complete" in text_of(head), timeout=120,
                    what="the sweep's two trials")
        assert table.row_count == 2
        columns = [str(c.label) for c in table.columns.values()]
        assert columns[:4] == ["#", "state", "val_loss", "time"] and {"cell", "lr"} <= set(columns)
        assert "best: trial" in text_of(head)
        await pilot.press("m")  # best first
        first = [str(c) for c in table.get_row_at(0)]
        values = [float(str(table.get_row_at(i)[2])) for i in range(2)]
        assert values == sorted(values)
        await pilot.press("p")
        assert "val_loss against" in text_of(app.screen.query_one("#sweep-chart"))
        await until(pilot, lambda: app.screen.sweep.state in ("finished", "stopped"),
                    what="the sweep's end")
        # an ended sweep offers no stop key, and says none
        offered = {b.binding.action for b in app.screen.active_bindings.values() if b.enabled}
        assert "stop_sweep" not in offered and "x stops" not in text_of(head)
        assert "needs 4 complete trials, and this sweep has 2 in all" in text_of(
            app.screen.query_one("#sweep-importance"))
        await pilot.press("enter")  # the trial under the cursor: its run on the Train tab
        run = first[columns.index("run")]
        await until(pilot, lambda: app.session.view is not None and app.session.view.run_id == run)
        assert app.screen.__class__.__name__ == "Workspace" and app.session.state == "finished"
        await until(pilot, lambda: any("Sweep formed finished" in n for n in notes),
                    what="the sweep's notice")


async def test_choosing_a_parallel_cell_in_the_form_takes_its_defaults_but_keeps_typed_values(tiny_corpus,
                                                                                           tmp_path):
    app = make_app(default_config("charlm", data=str(tiny_corpus)), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        dropout = app.query_one("#hp-dropout", Input)
        cell = app.query_one("#hp-cell", Select)
        assert dropout.value == "auto"
        cell.value = "mingru"  # a field left to auto is read as the cell's default
        await pilot.pause()
        assert dropout.value == "auto" and app.query_one(HyperparameterForm).read().dropout == 0.0
        cell.value = "gru"
        app.query_one("#hp-auto", Select).value = "no"
        await pilot.pause()
        assert dropout.value == "0.3"
        cell.value = "mingru"
        await pilot.pause()
        assert dropout.value == "0.0"  # the residual minGRU model's default (config.CELL_DEFAULTS)
        cell.value = "gru"
        await pilot.pause()
        assert dropout.value == "0.3"
        dropout.value = "0.25"  # typed by the user: it stays whatever the cell
        cell.value = "minlstm"
        await pilot.pause()
        assert dropout.value == "0.25"
        assert app.query_one(HyperparameterForm).read().cell == "minlstm"


async def test_the_form_leaves_the_size_to_auto_until_a_value_is_typed(tiny_corpus, tmp_path):
    app = make_app(default_config("charlm", data=str(tiny_corpus)), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        form = app.query_one(HyperparameterForm)
        fields = {n: app.query_one(f"#hp-{n}", Input) for n in AUTO_FIELDS}
        assert [f.value for f in fields.values()] == ["auto"] * 3
        assert form.left_to_auto() == AUTO_FIELDS and form.read().hidden_size == 512
        fields["hidden_size"].value = "640"  # typed: the user's value wins
        await pilot.pause()
        assert form.left_to_auto() == ("num_layers", "dropout") and form.read().hidden_size == 640
        argv = training_argv(form.read(), tmp_path, "r1", left_to_auto=form.left_to_auto())
        assert argv[argv.index("--hidden-size") + 1] == "640"
        assert "--dropout" not in argv and "--num-layers" not in argv and "--no-auto" not in argv
        # what the run fitted shows beside the fields it set
        form.show_auto({"settings": {"num_layers": 2, "dropout": 0.45}, "expected_epochs": 6.5,
                        "chars_per_second": 21000})
        assert "auto chose 0.45 for the last run (~6.5 epochs at 21,000 chars/s)" in text_of(
            app.query_one("#note-dropout"))
        form.show_auto({"settings": {"dropout": 0.5}, "metric": "balanced_accuracy", "epochs": 8,
                        "point": "names-8ep-balance"})
        assert "auto chose 0.5 for the last run (the best balanced accuracy measured for 8 epochs)" in \
            text_of(app.query_one("#note-dropout"))
        app.query_one("#hp-auto", Select).value = "no"  # off: the fixed defaults, and --no-auto
        await pilot.pause()
        assert [f.value for f in fields.values()] == ["640", "2", "0.3"] and form.left_to_auto() is None
        assert "--no-auto" in training_argv(form.read(), tmp_path, "r1", left_to_auto=None)
        app.query_one("#hp-auto", Select).value = "yes"
        await pilot.pause()
        assert [f.value for f in fields.values()] == ["640", "auto", "auto"]


async def test_log_scale_on_an_empty_chart_draws_nothing_and_keeps_the_app(tiny_corpus, tmp_path):
    # plotext raised building a log axis with no data: l before any run closed the app
    app = make_app(tiny_config(tiny_corpus), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("1", "l")
        await pilot.pause(0.3)
        assert app.is_running and "log scale" in text_of(app.query_one("#loss-plot"))
