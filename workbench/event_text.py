"""What a run's event shows on screen: log lines, samples, a notice, and what it changes in the panes.

Pure functions of the event (and the run's task), one per kind of event: the app puts what they
return where it goes. What an event changes of the run's state is the session's (session.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rich.text import Text

from rnn_engine.analysis.check import describe_check
from rnn_engine.config import describe_auto
from rnn_engine.events import (
    Checked,
    CheckpointSaved,
    ControlEndpointFailed,
    DeviceSwitched,
    EpochFinished,
    Evaluated,
    EvaluationProgress,
    Event,
    HyperparametersApplied,
    HyperparametersRejected,
    RunFailed,
    RunFinished,
    RunPaused,
    RunResumed,
    RunStarted,
    Sampled,
)

Line = str | Text  # a str holds Rich markup


@dataclass(frozen=True)
class Shown:
    """What one event shows: log lines, (title, text) samples, a notice (message, severity), and panes.

    `val` is a validation point (step, loss) for the loss charts; `confusion` the classifier's matrix
    (labels, matrix, epoch); `device` the status line's device and `activity` its activity (None:
    unchanged, "": cleared); `final` the ended run's summary; `to_train` shows the Train tab; `auto`
    what the run fitted to its budget, for the form.
    """

    log: tuple[Line, ...] = ()
    samples: tuple[tuple[str, str], ...] = ()
    notice: tuple[str, str] | None = None
    val: tuple[int, float] | None = None
    confusion: tuple[list[str], list[list[int]], int] | None = None
    device: str | None = None
    activity: str | None = None
    final: dict[str, Any] | None = None
    to_train: bool = False
    auto: dict[str, Any] | None = None


def describe(e: Event, task: str = "charlm", replay: bool = False) -> Shown:
    """What `e` shows for a run of `task`; a notice only for what happens now (not on `replay`)."""
    describer = _DESCRIBERS.get(type(e))
    return describer(e, task, replay) if describer is not None else Shown()


def _started(e: RunStarted, task: str, replay: bool) -> Shown:
    ranks = f" x {e.world_size} ranks" if e.world_size > 1 else ""
    resumed = f", resumed at step {e.resumed_from_step}" if e.resumed_from_step else ""
    log: list[Line] = [f"run {e.run_id} on {e.device}{ranks}: {e.parameters:,} parameters, "
                       f"{e.train_items:,} training items{resumed}"]
    if e.auto:
        log.append(describe_auto(e.auto))
    if e.world_size > 1:
        log.append(f"data-parallel: {e.world_size} ranks, each {e.threads} CPU thread(s) and "
                   f"1/{e.world_size} of every batch; rank 0 logs, saves and answers")
    if e.recurrent_path:
        log.append(f"recurrence: {e.recurrent_path}")
    if e.origin:
        log.append(e.origin)
    return Shown(tuple(log), device=e.device + ranks, auto=e.auto or None)


def _epoch(e: EpochFinished, task: str, replay: bool) -> Shown:
    acc = f", accuracy {e.val_accuracy:.1%}" if e.val_accuracy is not None else ""
    line = f"epoch {e.epoch}: train {e.train_loss:.4f}, val {e.val_loss:.4f}{acc}"
    confusion = (e.labels, e.confusion, e.epoch) if e.confusion else None
    samples: tuple[tuple[str, str], ...] = ()
    if e.sample:
        title = (f"epoch {e.epoch} · step {e.step} · held-out names, the model's guess" if task == "names"
                 else f"epoch {e.epoch} · step {e.step} · T={e.temperature}")
        samples = ((title, e.sample),)
    return Shown((line,), samples, val=(e.step, e.val_loss), confusion=confusion, activity="")


def _evaluated(e: Evaluated, task: str, replay: bool) -> Shown:
    acc = f", accuracy {e.val_accuracy:.1%}" if e.val_accuracy is not None else ""
    what = "whole validation split" if e.full else "validation subset"
    confusion = (e.labels, e.confusion, e.epoch) if e.confusion else None
    return Shown((f"step {e.step}: val {e.val_loss:.4f}{acc} ({what}, {e.items:,} items)",),
                 val=(e.step, e.val_loss), confusion=confusion, activity="")


def _evaluating(e: EvaluationProgress, task: str, replay: bool) -> Shown:
    if replay:
        return Shown()
    return Shown(activity=f"evaluating {'(full) ' if e.full else ''}{e.done / max(e.total, 1):.0%}")


def _paused(e: RunPaused, task: str, replay: bool) -> Shown:
    # a pause the run made itself (NaN, out of memory) is told by the app's watch on every run
    return Shown((f"[yellow]paused at step {e.step}[/]: {e.reason}",))


def _resumed(e: RunResumed, task: str, replay: bool) -> Shown:
    return Shown((f"resumed at step {e.step}",))


def _applied(e: HyperparametersApplied, task: str, replay: bool) -> Shown:
    changes = ", ".join(f"{k} → {v}" for k, v in e.changes.items())
    return Shown((f"step {e.step}: applied {changes}",))


def _rejected(e: HyperparametersRejected, task: str, replay: bool) -> Shown:
    rejected = "; ".join(f"{k} {v}" for k, v in e.errors.items())
    return Shown((f"[yellow]step {e.step}: not applied: {rejected}[/]",),
                 notice=None if replay else (f"Not applied: {rejected}", "error"))


def _switched(e: DeviceSwitched, task: str, replay: bool) -> Shown:
    return Shown((f"step {e.step}: now on {e.device}",), device=e.device)


def _saved(e: CheckpointSaved, task: str, replay: bool) -> Shown:
    return Shown((Text(f"step {e.step}: checkpoint ({e.reason}) {e.path}", style="dim"),))


def _sampled(e: Sampled, task: str, replay: bool) -> Shown:
    prime = f" · prime {e.prime!r}" if e.prime else ""
    every = {"periodic": " (periodic)", "final": " (at the end)"}.get(e.reason, "")
    # a sample the user asked for (g) is shown where it lands
    return Shown(samples=((f"sample · step {e.step}{every} · T={e.temperature}{prime}", e.text),),
                 to_train=e.reason == "asked" and not replay)


def _checked(e: Checked, task: str, replay: bool) -> Shown:
    return Shown((f"step {e.step}: {describe_check(e.report)}",))


def _endpoint_failed(e: ControlEndpointFailed, task: str, replay: bool) -> Shown:
    again = "started again" if e.restarted else "not started again: stop the run with a signal"
    return Shown((f"[yellow]step {e.step}: the control endpoint failed ({e.error}); {again}[/]",))


def _failed(e: RunFailed, task: str, replay: bool) -> Shown:
    return Shown((f"[red]step {e.step}: failed: {e.error}[/]",))


def _finished(e: RunFinished, task: str, replay: bool) -> Shown:
    s = e.summary
    metric = (f"val loss {s['val_loss']:.4f}, {s['chars_per_s']:,.0f} chars/s" if "val_loss" in s
              else f"test accuracy {s['test_accuracy']:.1%}, {s['names_per_s']:,.0f} names/s")
    return Shown((f"[b]run {e.reason}[/] at step {e.step}: {metric}",), final=s)


_DESCRIBERS: dict[type, Callable[[Any, str, bool], Shown]] = {
    RunStarted: _started, EpochFinished: _epoch, Evaluated: _evaluated, EvaluationProgress: _evaluating,
    RunPaused: _paused, RunResumed: _resumed, HyperparametersApplied: _applied,
    HyperparametersRejected: _rejected, DeviceSwitched: _switched, CheckpointSaved: _saved,
    Sampled: _sampled, Checked: _checked, ControlEndpointFailed: _endpoint_failed, RunFailed: _failed,
    RunFinished: _finished,
}
