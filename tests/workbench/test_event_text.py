"""What each event says on screen, as a pure function: no app, no run."""

from __future__ import annotations

from rich.text import Text

from rnn_engine.events import (
    Checked,
    CheckpointSaved,
    ControlEndpointFailed,
    EpochFinished,
    Evaluated,
    HyperparametersRejected,
    RunFinished,
    RunPaused,
    RunStarted,
    Sampled,
    StepFinished,
)
from workbench.event_text import Shown, describe


def started(**kw) -> RunStarted:
    base = dict(run_id="r1", run_dir="runs/r1", task="charlm", config={}, device="cpu", parameters=12_345,
                train_items=90_000, val_items=10_000)
    return RunStarted(**{**base, **kw})


def test_a_run_start_names_the_run_its_size_and_its_path():
    shown = describe(started(recurrent_path="fused C++ kernels, oneDNN GEMMs", resumed_from_step=40))
    assert shown.log == ("run r1 on cpu: 12,345 parameters, 90,000 training items, resumed at step 40",
                         "recurrence: fused C++ kernels, oneDNN GEMMs")
    ranks = describe(started(world_size=2, threads=1)).log
    assert ranks[0].startswith("run r1 on cpu x 2 ranks") and "2 ranks, each 1 CPU thread(s)" in ranks[1]


def test_an_epoch_adds_a_log_line_and_its_sample_titled_for_the_task():
    lm = describe(EpochFinished(2, 80, 1.5, 1.62, "To be, or not", 0.8), "charlm")
    assert lm.log == ("epoch 2: train 1.5000, val 1.6200",)
    assert lm.samples == (("epoch 2 · step 80 · T=0.8", "To be, or not"),)
    names = describe(EpochFinished(1, 10, 0.9, 0.8, "Petrov → Russian", 0.8, 0.75), "names")
    assert names.log == ("epoch 1: train 0.9000, val 0.8000, accuracy 75.0%",)
    assert names.samples[0][0] == "epoch 1 · step 10 · held-out names, the model's guess"
    assert describe(EpochFinished(1, 10, 0.9, 0.8, "", 0.8)).samples == ()


def test_an_evaluation_says_how_much_it_read():
    assert describe(Evaluated(50, 1, 1.25, items=2000, full=False)).log == \
        ("step 50: val 1.2500 (validation subset, 2,000 items)",)
    assert "whole validation split" in describe(Evaluated(50, 1, 1.25, items=9, full=True)).log[0]


def test_a_rejected_change_is_a_notice_only_when_it_happens_now():
    nan = RunPaused(7, "non-finite loss (nan) at step 8")
    assert describe(nan).log == ("[yellow]paused at step 7[/]: non-finite loss (nan) at step 8",)
    assert describe(nan).notice is None  # the app's watch tells of pauses, for every run alike
    rejected = HyperparametersRejected(3, {"lr": "must be > 0"})
    assert describe(rejected).notice == ("Not applied: lr must be > 0", "error")
    assert describe(rejected, replay=True).notice is None  # replaying an old log raises no alarms


def test_samples_checkpoints_checks_and_the_end():
    asked = describe(Sampled(9, "ROMEO: hi", 0.7, prime="ROMEO:", reason="asked"))
    assert asked.samples == (("sample · step 9 · T=0.7 · prime 'ROMEO:'", "ROMEO: hi"),) and not asked.log
    saved = describe(CheckpointSaved(9, "runs/r1/last.pt", "epoch")).log[0]
    assert isinstance(saved, Text) and saved.plain == "step 9: checkpoint (epoch) runs/r1/last.pt"
    report = {"reference": "torch.nn.GRU", "max_abs_diff_output": 1e-6, "max_abs_diff_grad": 2e-6,
              "worst_parameter": "rnn.weight_hh_l0"}
    assert "against torch.nn.GRU" in describe(Checked(9, report)).log[0]
    finished = describe(RunFinished(9, "completed", {"val_loss": 1.4, "chars_per_s": 19_700.0}))
    assert finished.log == ("[b]run completed[/] at step 9: val loss 1.4000, 19,700 chars/s",)
    failed = describe(ControlEndpointFailed(9, "RecursionError", 1, True)).log[0]
    assert "the control endpoint failed (RecursionError); started again" in failed


def test_what_the_log_has_no_line_for_shows_nothing():
    step = StepFinished(1, 1, 2.0, 1.0, 1.0, 1e-3, 100.0, 0.1, 0.0, -1.0)
    assert describe(step) == Shown()
