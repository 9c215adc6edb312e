"""The followed run's state machine, without Textual, a process or a run directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from rnn_engine.config import default_config
from rnn_engine.events import (
    DeviceSwitched,
    HyperparametersApplied,
    RunFinished,
    RunPaused,
    RunResumed,
    RunStarted,
)
from workbench.run_view import RunView
from workbench.session import RunSession


def session_on(run_id: str = "r1", started: bool = False, task: str = "charlm"):
    seen: list[str] = []
    session = RunSession(seen.append)
    config = default_config(task, data="sonnets.txt")
    session.follow(RunView(Path("runs") / run_id), started, config)
    return session, seen


def started_event(task: str = "charlm", world_size: int = 1) -> RunStarted:
    config = default_config(task, data="plays.txt", lr=0.01).to_dict()
    return RunStarted("r1", "runs/r1", task, config, "cpu", 1000, 100, 10, world_size=world_size)


def test_nothing_shown_refuses_every_command_and_says_how_to_start():
    session = RunSession()
    assert session.state == "idle" and not session.live
    assert "s starts one" in session.refusal().message
    assert "no model yet" in session.classifier_hint()


def test_an_attached_run_is_attaching_until_its_record_says_what_it_does():
    session, seen = session_on()
    assert seen == ["attaching"] and session.live
    assert "still starting" in session.refusal().message  # its commands wait until it runs
    session.status("running")
    assert session.state == "running" and session.refusal() is None
    assert seen == ["attaching", "running"]


def test_a_started_run_goes_from_starting_to_running_with_its_first_step():
    session, seen = session_on(started=True)
    session.status("starting")
    assert session.state == "starting"
    session.stepped()
    assert session.state == "running" and seen == ["starting", "starting", "running"]


def test_run_started_brings_the_run_s_own_settings_and_its_ranks():
    session, _ = session_on(started=True)
    session.event(started_event(world_size=2))
    assert session.config.lr == 0.01 and session.config.data == "plays.txt" and session.world_size == 2
    assert session.state == "running"


def test_pause_goes_out_as_pausing_and_becomes_paused_when_the_run_says_so():
    session, seen = session_on()
    session.status("running")
    assert session.pause_command() == "pause"
    session.asked("pause", request=4)
    assert session.state == "pausing" and session.paused_wanted
    session.event(RunPaused(10, "asked"))
    assert session.state == "paused" and session.run_state == "paused"
    assert session.pause_command() == "resume"
    session.asked("resume", request=5)
    assert session.state == "resuming"
    session.event(RunResumed(11))
    assert session.state == "running" and not session.paused_wanted
    assert seen[-4:] == ["pausing", "paused", "resuming", "running"]


def test_a_pause_the_run_made_itself_counts_as_wanted():
    # a NaN pauses the run: p then resumes it, as the user expects
    session, _ = session_on()
    session.status("running")
    session.event(RunPaused(10, "the loss became NaN"))
    assert session.paused_wanted and session.pause_command() == "resume"


def test_a_reply_is_matched_to_what_it_was_asked_for_once():
    session, _ = session_on()
    session.status("running")
    session.asked("apply", request=7, purpose="apply")
    session.asked("sample", request=8)  # its answer comes as an event: nothing to remember
    assert session.pending == {7: "apply"}
    assert session.answered(7) == "apply" and session.answered(7) == ""
    assert session.answered(None) == "" and session.pending == {}


def test_live_changes_and_a_device_switch_update_the_settings_shown():
    session, _ = session_on()
    session.event(HyperparametersApplied(3, {"lr": 0.005, "clip": 2.0}))
    session.event(DeviceSwitched(4, "cuda:0"))
    assert session.config.lr == 0.005 and session.config.clip == 2.0 and session.config.device == "cuda:0"


@pytest.mark.parametrize("reason, state", [("completed", "finished"), ("stopped", "stopped"),
                                           ("nan", "stopped"), ("pruned", "pruned")])
def test_the_end_reason_gives_the_final_word(reason, state):
    session, _ = session_on()
    session.status("running")
    session.event(RunFinished(20, reason, {}))
    assert session.state == state


def test_after_its_end_nothing_the_run_said_earlier_makes_it_live_again():
    session, _ = session_on()
    session.status("running")
    session.asked("stop", request=1)
    assert session.state == "stopping"
    session.ended_as("stopped")
    session.status("running")  # a late read of an old record
    session.event(RunResumed(30))
    assert not session.live and session.run_state == "stopped"
    refusal = session.refusal()
    assert refusal.severity == "warning" and "is stopped: it takes no commands" in refusal.message


def test_quitting_waits_for_the_save_and_following_another_run_starts_afresh():
    session, _ = session_on()
    session.status("running")
    session.asked("stop", request=1)
    session.asked("quit")
    assert session.state == "saving" and session.quit_when_ended
    session.asked("apply", request=2, purpose="apply")
    session.follow(RunView(Path("runs/r2")), started=False)
    assert session.run_id == "r2" and session.state == "attaching" and session.pending == {}
    assert not session.paused_wanted and session.config is None


def test_the_endpoint_note_is_news_once():
    session, _ = session_on()
    assert session.endpoint("control endpoint down") and not session.endpoint("control endpoint down")
    assert session.endpoint("") and not session.endpoint("")


def test_the_classifier_tab_names_the_model_that_would_answer():
    session, _ = session_on(task="names")
    session.status("running")
    assert "run r1 is running: type a surname above and the model as it is now answers" == \
        session.classifier_hint()
    session.ended_as("finished")
    assert "run r1 (finished): type a surname above and its saved model answers" == session.classifier_hint()
    lm, _ = session_on(task="charlm")
    assert "is a language model" in lm.classifier_hint()
