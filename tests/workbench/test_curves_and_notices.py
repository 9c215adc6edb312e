"""The charts' smoothing against TensorBoard's formula, and which run changes make a notice."""

from __future__ import annotations

import math

import pytest

from rnn_engine.rundir.runs import RunInfo
from workbench.curves import ChartSettings, smooth
from workbench.notices import RunWatch, notice_for


def test_smoothing_is_tensorboards_debiased_moving_average():
    # by hand, with w = 0.5: averages 0.5, 1.25, 2.125 over debias 1 - 0.5^n = 0.5, 0.75, 0.875
    assert smooth([1.0, 2.0, 3.0], 0.5) == pytest.approx([1.0, 5 / 3, 2.125 / 0.875])
    # w = 0.6 (TensorBoard's default) on a step: it climbs towards the new level
    s = smooth([0.0, 0.0, 10.0, 10.0, 10.0], 0.6)
    assert s[:2] == [0.0, 0.0] and s[2] == pytest.approx(4 / (1 - 0.6 ** 3)) and 6 < s[-1] < 10
    assert smooth([3.0, float("nan"), 5.0], 0.9)[1] != smooth([3.0, float("nan"), 5.0], 0.9)[1]  # NaN kept
    assert smooth([2.0] * 4, 0.9) == [2.0] * 4  # a constant series stays as it is, as in TensorBoard
    assert smooth([1.0, 4.0], 0.0) == [1.0, 4.0]
    with pytest.raises(ValueError, match=r"in \[0, 1\)"):
        smooth([1.0], 1.0)


def test_chart_settings_step_through_the_weights_and_drop_what_a_log_axis_cannot_show():
    settings = ChartSettings()
    assert settings.describe() == "smoothing 0.6"
    settings.step_smoothing(1)
    settings.step_smoothing(1)
    assert settings.smoothing == 0.9
    for _ in range(10):
        settings.step_smoothing(-1)
    assert settings.smoothing == 0.0 and settings.describe() == "no smoothing"
    settings.log_scale = True
    raw, smoothed = settings.curve([(1, 2.0), (2, 0.0), (3, -1.0), (4, math.inf), (5, 1.0)])
    assert raw == smoothed == [(1, 2.0), (5, 1.0)] and settings.describe() == "no smoothing · log scale"


def info(run_id: str, state: str, reason: str = "", started: float = 100.0, best: str = "val 1.2345"):
    return RunInfo(run_id, f"runs/{run_id}", "charlm", "gru", "1x8", 40, best, state, started=started,
                   reason=reason)


def test_a_run_that_ends_fails_or_pauses_by_itself_makes_one_notice():
    watch = RunWatch(since=50.0)
    assert watch.look([info("a", "running"), info("old", "finished", started=10.0)]) == []  # what is there
    assert watch.look([info("a", "running")]) == []
    (done,) = watch.look([info("a", "finished")])
    assert (done.run_id, done.severity) == ("a", "information")
    assert done.message == "Run a finished at step 40 (best val 1.2345)."
    assert watch.look([info("a", "finished")]) == []  # said once
    assert watch.look([info("a", "finished"), info("b", "running")]) == []
    (nan,) = watch.look([info("b", "paused", "non-finite loss (nan) at step 9")])
    assert nan.severity == "error" and "paused itself: non-finite loss" in nan.message
    assert watch.look([info("b", "running")]) == []
    assert watch.look([info("b", "paused", "paused by user")]) == []  # the user knows
    (gone,) = watch.look([info("b", "dead", "process 7 is gone without a final event")])
    assert gone.severity == "error" and gone.message.startswith("Run b died: process 7")
    # a run that started and ended between two looks, after the app opened
    (quick,) = watch.look([info("c", "failed", "DataError: x", started=60.0)])
    assert quick.message == "Run c failed: DataError: x"
    assert notice_for(info("p", "pruned")).severity == "warning"
    assert notice_for(info("s", "stopped")).message == "Run s stopped at step 40 (best val 1.2345)."
