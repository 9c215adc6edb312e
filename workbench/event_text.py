"""What a run's event says on screen: lines for the activity log, entries for the samples pane, notices.

Pure functions of the event (and the run's task): the app puts what they return where it goes,
and updates its widgets' state itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text

from rnn_engine.analysis.check import describe_check
from rnn_engine.events import (
    Checked,
    CheckpointSaved,
    ControlEndpointFailed,
    DeviceSwitched,
    EpochFinished,
    Evaluated,
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
    """What one event adds: log lines, (title, text) samples, and a notice (message, severity) if any."""

    log: tuple[Line, ...] = ()
    samples: tuple[tuple[str, str], ...] = ()
    notice: tuple[str, str] | None = None


def describe(e: Event, task: str = "charlm", replay: bool = False) -> Shown:
    """The text of `e` for a run of `task`; a notice only for what happens now (not on `replay`)."""
    if isinstance(e, RunStarted):
        ranks = f" x {e.world_size} ranks" if e.world_size > 1 else ""
        resumed = f", resumed at step {e.resumed_from_step}" if e.resumed_from_step else ""
        log: list[Line] = [f"run {e.run_id} on {e.device}{ranks}: {e.parameters:,} parameters, "
                           f"{e.train_items:,} training items{resumed}"]
        if e.world_size > 1:
            log.append(f"data-parallel: {e.world_size} ranks, each {e.threads} CPU thread(s) and "
                       f"1/{e.world_size} of every batch; rank 0 logs, saves and answers")
        if e.recurrent_path:
            log.append(f"recurrence: {e.recurrent_path}")
        if e.origin:
            log.append(e.origin)
        return Shown(tuple(log))
    if isinstance(e, EpochFinished):
        acc = f", accuracy {e.val_accuracy:.1%}" if e.val_accuracy is not None else ""
        line = f"epoch {e.epoch}: train {e.train_loss:.4f}, val {e.val_loss:.4f}{acc}"
        if not e.sample:
            return Shown((line,))
        title = (f"epoch {e.epoch} · step {e.step} · held-out names, the model's guess" if task == "names"
                 else f"epoch {e.epoch} · step {e.step} · T={e.temperature}")
        return Shown((line,), ((title, e.sample),))
    if isinstance(e, Evaluated):
        acc = f", accuracy {e.val_accuracy:.1%}" if e.val_accuracy is not None else ""
        what = "whole validation split" if e.full else "validation subset"
        return Shown((f"step {e.step}: val {e.val_loss:.4f}{acc} ({what}, {e.items:,} items)",))
    if isinstance(e, RunPaused):
        # a pause the run made itself (NaN, out of memory) is told by the app's watch on every run
        return Shown((f"[yellow]paused at step {e.step}[/]: {e.reason}",))
    if isinstance(e, RunResumed):
        return Shown((f"resumed at step {e.step}",))
    if isinstance(e, HyperparametersApplied):
        changes = ", ".join(f"{k} → {v}" for k, v in e.changes.items())
        return Shown((f"step {e.step}: applied {changes}",))
    if isinstance(e, HyperparametersRejected):
        rejected = "; ".join(f"{k} {v}" for k, v in e.errors.items())
        return Shown((f"[yellow]step {e.step}: not applied: {rejected}[/]",),
                     notice=None if replay else (f"Not applied: {rejected}", "error"))
    if isinstance(e, DeviceSwitched):
        return Shown((f"step {e.step}: now on {e.device}",))
    if isinstance(e, CheckpointSaved):
        return Shown((Text(f"step {e.step}: checkpoint ({e.reason}) {e.path}", style="dim"),))
    if isinstance(e, Sampled):
        prime = f" · prime {e.prime!r}" if e.prime else ""
        every = {"periodic": " (periodic)", "final": " (at the end)"}.get(e.reason, "")
        return Shown(samples=((f"sample · step {e.step}{every} · T={e.temperature}{prime}", e.text),))
    if isinstance(e, Checked):
        return Shown((f"step {e.step}: {describe_check(e.report)}",))
    if isinstance(e, ControlEndpointFailed):
        again = "started again" if e.restarted else "not started again: stop the run with a signal"
        return Shown((f"[yellow]step {e.step}: the control endpoint failed ({e.error}); {again}[/]",))
    if isinstance(e, RunFailed):
        return Shown((f"[red]step {e.step}: failed: {e.error}[/]",))
    if isinstance(e, RunFinished):
        s = e.summary
        metric = (f"val loss {s['val_loss']:.4f}, {s['chars_per_s']:,.0f} chars/s" if "val_loss" in s
                  else f"test accuracy {s['test_accuracy']:.1%}, {s['names_per_s']:,.0f} names/s")
        return Shown((f"[b]run {e.reason}[/] at step {e.step}: {metric}",))
    return Shown()
