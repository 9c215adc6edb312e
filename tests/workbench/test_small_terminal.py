"""The app in an 80×24 terminal and from every tab: one scrolling column, keys that keep working."""

from __future__ import annotations

import json

from textual.widgets import Button, Input, Label

from rnn_engine import Trainer
from workbench.app import make_app
from workbench.screens.quit import QuitScreen
from workbench.widgets.sample_log import SampleLog

from .test_app import text_of, tiny_config, until

SMALL, LARGE = (80, 24), (160, 48)


def short_run(corpus, runs_dir, run_id="short"):
    """A run that ends before its first periodic evaluation or sample (3 steps of many epochs)."""
    config = tiny_config(corpus, epochs=1000, max_steps=3, eval_interval=0.0, sample_length=40)
    Trainer(config, runs_dir=runs_dir, run_id=run_id).run()
    return runs_dir / run_id


def test_a_run_ending_before_its_first_evaluation_is_evaluated_and_sampled_at_the_end(tiny_corpus, tmp_path):
    run_dir = short_run(tiny_corpus, tmp_path / "runs")
    log = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    kinds = [e["event"] for e in log]
    assert "EpochFinished" not in kinds  # no epoch ended: only the end could evaluate and sample
    evaluated = [e for e in log if e["event"] == "Evaluated"]
    sampled = [e for e in log if e["event"] == "Sampled"]
    assert len(evaluated) == 1 and evaluated[0]["step"] == 3
    assert len(sampled) == 1 and sampled[0]["reason"] == "final" and len(sampled[0]["text"]) == 40
    finished = log[-1]
    assert finished["event"] == "RunFinished" and finished["summary"]["val_loss"] == evaluated[0]["val_loss"]


async def test_an_ended_run_shows_its_figures_not_an_eta_and_its_sample(tiny_corpus, tmp_path):
    run_dir = short_run(tiny_corpus, tmp_path / "runs")
    summary = json.loads((run_dir / "events.jsonl").read_text().splitlines()[-1])["summary"]
    app = make_app(tiny_config(tiny_corpus), tmp_path / "runs", attach=run_dir)
    async with app.run_test(size=SMALL) as pilot:
        await until(pilot, lambda: app.session.state == "finished", what="the replay")
        await pilot.pause()
        status = text_of(app.query_one("#status"))
        assert "FINISHED" in status and "ETA" not in status
        assert f"val {summary['val_loss']:.4f}" in status
        # the figures and the run line each keep to one line of 80 columns (neither pushes the other off)
        first, second = status.splitlines()
        assert len(first) <= 78 and second.startswith("run short")
        assert str(app.query_one("#val-label", Label).render()) == f"val loss    {summary['val_loss']:.4f}"
        assert "(at the end)" in app.query_one(SampleLog).plain[0]
        latest = text_of(app.query_one("#latest"))
        assert latest.startswith("latest sample · step 3 (at the end)") and "gradient norm ‖g‖" in latest


async def test_at_80x24_the_train_tab_is_one_column_that_scrolls_with_the_newest_first(tiny_corpus, tmp_path):
    run_dir = short_run(tiny_corpus, tmp_path / "runs")
    app = make_app(tiny_config(tiny_corpus), tmp_path / "runs", attach=run_dir)
    async with app.run_test(size=SMALL) as pilot:
        await until(pilot, lambda: app.session.state == "finished", what="the replay")
        await pilot.pause()
        panes = app.query_one("#train-panes")
        left, right, latest = (app.query_one(q) for q in ("#train-left", "#train-right", "#latest"))
        assert app.has_class("-compact") and latest.display
        assert right.region.y >= left.region.bottom  # one column
        screen_height = app.screen.size.height
        # the loss, the newest sample and ‖g‖ are on the first screen; the rest is a scroll away
        assert latest.region.bottom <= screen_height - 1 and app.query_one("#val-label").region.y > 0
        assert panes.max_scroll_y > 0 and app.focused is panes
        await pilot.press("end")
        await pilot.pause()
        assert panes.scroll_y == panes.max_scroll_y
        await pilot.resize_terminal(*LARGE)
        await pilot.pause()
        assert not app.has_class("-compact") and not latest.display
        assert right.region.x >= left.region.right and right.region.y == left.region.y  # side by side


async def test_digits_switch_tabs_from_every_tab_and_enter_moves_into_the_name_box(tiny_corpus, tmp_path):
    app = make_app(tiny_config(tiny_corpus), tmp_path / "runs")
    async with app.run_test(size=SMALL) as pilot:
        tabs = app.query_one("#tabs")
        for key, tab in (("2", "hyper"), ("3", "classify"), ("4", "runs"), ("5", "inside"), ("3", "classify"),
                         ("1", "train"), ("3", "classify"), ("5", "inside"), ("2", "hyper"), ("1", "train")):
            await pilot.press(key)
            await pilot.pause()
            assert tabs.active == tab, f"{key} from the previous tab"
            assert not isinstance(app.focused, Input)
        await pilot.press("3", "enter")
        box = app.query_one("#clf-input", Input)
        assert app.focused is box
        await pilot.press("4", "5")  # in the box digits are text
        assert box.value == "45" and tabs.active == "classify"
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("4")
        assert tabs.active == "runs"
        assert "Enter (or Tab) moves into the box" in text_of(app.query_one("#clf-help"))


async def test_help_scrolls_and_says_how_to_close(tiny_corpus, tmp_path):
    app = make_app(tiny_config(tiny_corpus), tmp_path / "runs")
    async with app.run_test(size=SMALL) as pilot:
        await pilot.press("question_mark")
        await until(pilot, lambda: app.screen.__class__.__name__ == "HelpScreen")
        await pilot.pause()
        body = app.screen.query_one("#help-body")
        assert "Esc, ? or q closes" in text_of(app.screen.query_one("#help-close"))
        assert body.max_scroll_y > 0 and app.screen.focused is body
        await pilot.press("end")
        await pilot.pause()
        assert body.scroll_y == body.max_scroll_y
        await pilot.press("escape")
        await until(pilot, lambda: app.screen.__class__.__name__ == "Workspace")


async def test_the_quit_dialogs_default_is_the_button_drawn_as_primary(tiny_corpus, tmp_path):
    app = make_app(tiny_config(tiny_corpus), tmp_path / "runs")
    async with app.run_test(size=SMALL) as pilot:
        for started_here, default in ((True, "quit-stop"), (False, "quit-leave")):
            app.push_screen(QuitScreen("r1", started_here))
            await pilot.pause()
            primary = [b.id for b in app.screen.query(Button) if b.variant == "primary"]
            assert primary == [default] and app.screen.focused.id == default
            await pilot.press("escape")
            await pilot.pause()
