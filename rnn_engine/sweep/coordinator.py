"""A sweep process: asks the study for trials, starts each as a run, and tells the study how it did.

The sweep keeps `parallel` trials going at a time until the study holds `trials` in all, counting
the trials every sweep process of the study has started (on this machine or another sharing the
storage). Running the same command again continues the study: trials that a killed sweep left
running are watched again if their runs live, and told as failed if not. A trial whose run fails or
is killed is told failed and the sweep goes on. SIGTERM (the app's stop key) lets the running
trials finish and starts no more; a second SIGTERM, or SIGINT, stops them too.

Sweeps are equals started with the same command line, on one machine or several. They draw
different parameters: each trial's sampler is seeded with the study's seed and the trial's number
(recorded as `sampler_seed`), TPE counts the running trials as bad ones (`constant_liar`), and a
draw that repeats a finished or running trial's parameters is drawn again. Each sweep beats for
the trials it runs (heartbeat.py); a trial whose sweep stopped beating (its machine died) is
failed by another sweep after the grace period and retried once.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import RunConfig
from ..rundir.eventlog import last_record
from ..rundir.launch import output_tail, start_run, training_argv
from ..rundir.layout import RunDir
from ..rundir.liveness import LivenessWriter, process_alive, process_start, run_state
from .heartbeat import GRACE_PERIOD, HEARTBEAT_INTERVAL, Heartbeats
from .reporter import metric_value
from .space import Space
from .storage import first_contact, is_database, open_storage
from .study import counted_trials, make_pruner, quiet_optuna, sweep_dir, this_host, write_definition

POLL = 0.5  # seconds between looks at the trials' runs
REDRAWS = 20  # draws in a row that repeat tried parameters before a sweep takes the space as exhausted


@dataclass
class SweepSettings:
    """What `workbench sweep` was asked for."""

    study: str
    storage: str  # a database URL or a journal file's path
    space: Space
    base: RunConfig  # every setting a trial does not sweep
    runs_dir: Path
    trials: int  # the study's total
    parallel: int = 1
    sampler: str = "tpe"
    pruner: str = "median"
    seed: int | None = None
    metric: str = "val_loss"  # or "accuracy" (name classifier)
    extra_flags: list[str] = field(default_factory=list)  # command flags kept for each trial (--encoding)
    heartbeat_interval: float = HEARTBEAT_INTERVAL  # seconds between this sweep's beats for its trials
    grace_period: float = GRACE_PERIOD  # seconds without a beat before another sweep fails a trial

    @property
    def direction(self) -> str:
        return "maximize" if self.metric == "accuracy" else "minimize"


def make_sampler(kind: str, seed: int | None) -> Any:
    """The sampler for one trial: TPE counting running trials as bad ones, or random."""
    import optuna

    if kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, constant_liar=True)


def trial_seed(seed: int | None, number: int) -> int | None:
    """A trial's sampler seed: distinct per trial number, so equal workers draw apart; None stays random."""
    return None if seed is None else (seed * 1_000_003 + number) % 2**32


def create_study(settings: SweepSettings) -> Any:
    """The study, made on first use and loaded after; its direction comes from the metric."""
    import optuna

    quiet_optuna()
    storage = open_storage(settings.storage)

    def make() -> Any:
        return optuna.create_study(storage=storage, study_name=settings.study, direction=settings.direction,
                                   sampler=make_sampler(settings.sampler, settings.seed),
                                   pruner=make_pruner(settings.pruner), load_if_exists=True)

    study = first_contact(make, settings.storage) if is_database(settings.storage) else make()
    if study.direction.name.lower() != settings.direction:
        raise ValueError(f"study {settings.study} {study.direction.name.lower()}s its metric; this sweep "
                         f"would {settings.direction} {settings.metric}: give another --study")
    return study


class Sweep:
    """One sweep process over a study (see the module's docstring)."""

    def __init__(self, settings: SweepSettings, say: Callable[[str], None] = print) -> None:
        self.s = settings
        self.say = say
        self.study = create_study(settings)
        self.dir = sweep_dir(settings.runs_dir, settings.study)
        self.watched: dict[int, tuple[subprocess.Popen | None, Path]] = {}
        self.draining = False  # no new trials
        self.stopping = False  # and the running ones asked to stop
        self.host = this_host()
        self.heartbeats = Heartbeats(self.study, settings.heartbeat_interval, settings.grace_period,
                                     self.host, say, self._ask_lock)

    # -- lifetime -------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        from .study import summary

        write_definition(self.dir, {"study": self.s.study, "storage": self.s.storage, "metric": self.s.metric,
                                    "direction": self.s.direction, "trials": self.s.trials,
                                    "parallel": self.s.parallel, "space": self.s.space.to_toml(),
                                    "base": self.s.base.to_dict(), "runs_dir": str(self.s.runs_dir)})
        record = LivenessWriter(self.dir, {"study": self.s.study, "storage": self.s.storage, "kind": "sweep"})
        record.update(state="running")
        record.start()
        previous = self._handle_signals()
        final = "failed"
        try:
            self._adopt()
            while True:
                self._collect()
                self.heartbeats.beat(self.watched)
                self.heartbeats.reap(self.watched)
                if not self.draining:
                    self._start_trials()
                if not self.watched and (self.draining or self._total() >= self.s.trials):
                    break
                record.update(trials=len(self.watched))
                time.sleep(POLL)
            final = "stopped" if self.draining else "finished"
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            record.close(state=final)
        return summary(self.study, self.s.storage)

    def _handle_signals(self) -> dict[int, Any]:
        if not threading_main():
            return {}  # signal handlers can only be set from the main thread (a sweep run by a test)

        def drain(signum: int, frame: Any) -> None:
            if self.draining or signum == signal.SIGINT:
                self.stopping = True
                self.say("sweep: stopping the running trials (they save, and are told as failed)")
                self._stop_trials()
            else:
                self.say("sweep: starting no more trials; the running ones finish (again to stop them)")
            self.draining = True

        previous = {}
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, drain)
        return previous

    # -- trials ---------------------------------------------------------------------------------
    def _total(self) -> int:
        """Trials asked for so far by any sweep of the study (queued ones, not yet asked, wait their turn)."""
        return len(counted_trials(self.study.get_trials(deepcopy=False)))

    def _adopt(self) -> None:
        """Trials a sweep of this machine left running when it ended: watched again while their run
        lives, told failed if it does not. Those of a sweep still going are its own to watch."""
        for t in self.study.get_trials(deepcopy=False):
            attrs = t.user_attrs
            if t.state.name != "RUNNING" or attrs.get("host") != self.host or _alive(attrs, "sweep"):
                continue
            run_dir = Path(str(attrs.get("run_dir", "")))
            state = run_state(run_dir) if run_dir.name else None
            if state is not None and (state.live or _alive(attrs, "trial")):
                self.say(f"trial {t.number}: watching its run {run_dir.name} again")
                self.watched[t.number] = (None, run_dir)
            elif state is not None and state.state in ("finished", "pruned", "stopped", "failed"):
                self._tell(t.number, run_dir, None)  # it ended on its own: its outcome stands
            else:  # killed with its sweep, as by a power cut: run it again, once
                with self._ask_lock():
                    self.heartbeats.fail_and_retry(
                        t, f"worker on {self.host} stopped answering (its sweep and run were gone)")

    def _start_trials(self) -> None:
        while len(self.watched) < self.s.parallel and self._total() < self.s.trials:
            with self._ask_lock():
                if self._total() >= self.s.trials:
                    return
                drawn = self._draw()
            if drawn is None:
                return
            trial, params = drawn
            config = self.s.base.updated(**params)
            errors = config.validate()
            if errors:  # a combination no run takes (too large for memory, say)
                reason = "; ".join(f"{k}: {v}" for k, v in errors.items())
                self._fail(trial, f"not run: {reason}")
                self.say(f"trial {trial.number}: {params} cannot run ({reason})")
                continue
            self._start(trial, params, config)

    def _draw(self) -> tuple[Any, dict[str, Any]] | None:
        """A new trial and its parameters, none of them tried already; None when there is nothing to run."""
        for _ in range(REDRAWS):
            trial = self.study.ask()
            if self._too_late(trial.number):  # another machine asked at the same moment
                self._fail(trial, f"not run: the study had its {self.s.trials} trials", hidden=True)
                return None
            seed = trial_seed(self.s.seed, trial.number)
            trial.set_user_attr("sampler_seed", seed)
            self.study.sampler = make_sampler(self.s.sampler, seed)  # what suggest draws with
            params = self.s.space.suggest(trial)
            twin = None if self._queued(trial) else self._twin(trial.number, params)
            if twin is None:
                return trial, params
            self._fail(trial, f"drawn again: the parameters of trial {twin}", hidden=True)
        self.say(f"sweep: {REDRAWS} draws in a row repeated tried parameters; the space looks exhausted, "
                 "so no more trials start")
        self.draining = True
        return None

    def _too_late(self, number: int) -> bool:
        earlier = [t for t in counted_trials(self.study.get_trials(deepcopy=False)) if t.number < number]
        return len(earlier) >= self.s.trials

    def _queued(self, trial: Any) -> bool:
        """Whether the trial's parameters were queued by hand (enqueue_trial) or by a retry, not drawn."""
        frozen = self.study._storage.get_trial(trial._trial_id)
        return "fixed_params" in frozen.system_attrs

    def _twin(self, number: int, params: dict[str, Any]) -> int | None:
        """The number of a finished or running trial with these parameters, if there is one."""
        for t in self.study.get_trials(deepcopy=False):
            if t.number != number and t.state.name in ("COMPLETE", "PRUNED", "RUNNING") and \
                    not t.user_attrs.get("hidden") and t.params == params:
                return t.number
        return None

    def _fail(self, trial: Any, reason: str, hidden: bool = False) -> None:
        from optuna.trial import TrialState

        trial.set_user_attr("reason", reason)
        if hidden:
            trial.set_user_attr("hidden", True)
        self.study.tell(trial, state=TrialState.FAIL)

    def _start(self, trial: Any, params: dict[str, Any], config: RunConfig) -> None:
        run_id = self._run_id(trial.number)
        run_dir = self.s.runs_dir / run_id
        me = os.getpid()
        for key, value in (("run_id", run_id), ("run_dir", str(run_dir.resolve())), ("host", self.host),
                           ("sweep_pid", me), ("sweep_pid_start", process_start(me)),
                           ("grace_period", self.s.grace_period)):
            trial.set_user_attr(key, value)
        argv = training_argv(config, self.s.runs_dir, run_id) + self.s.extra_flags + [
            "--sweep-storage", self.s.storage, "--sweep-study", self.s.study,
            "--sweep-trial", str(trial.number), "--sweep-metric", self.s.metric,
            "--sweep-pruner", self.s.pruner]
        process = start_run(argv, run_dir)
        trial.set_user_attr("trial_pid", process.pid)
        trial.set_user_attr("trial_pid_start", process_start(process.pid))
        self.watched[trial.number] = (process, run_dir)
        self.heartbeats.beat(self.watched, now=True)
        retry = trial.user_attrs.get("retry_of")
        again = f" (retrying trial {retry})" if retry is not None else ""
        shown = ", ".join(f"{k}={_short(v)}" for k, v in params.items())
        self.say(f"trial {trial.number}: {shown} → run {run_id} (pid {process.pid}){again}")

    def _run_id(self, number: int) -> str:
        base = f"{self.s.study}-{number:03d}"
        candidate, n = base, 1
        while (self.s.runs_dir / candidate).exists():  # a study of the same name run elsewhere before
            n += 1
            candidate = f"{base}-{n}"
        return candidate

    @contextlib.contextmanager
    def _ask_lock(self):
        """Two sweeps of one journal file count and ask under one lock, so the total is not overrun."""
        if is_database(self.s.storage):
            yield  # a database: the trial's number tells whether it came too late
            return
        path = Path(self.s.storage + ".ask.lock")
        with open(path, "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _collect(self) -> None:
        for number, (process, run_dir) in list(self.watched.items()):
            state = run_state(run_dir)
            alive = process is not None and process.poll() is None
            if state.live or (alive and not state.record):
                continue  # training, or still loading its data before its first record
            if alive:
                # the run recorded its end; its process finishes writing in a moment
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(5)
            self._tell(number, run_dir, process)
            del self.watched[number]

    def _tell(self, number: int, run_dir: Path, process: subprocess.Popen | None) -> None:
        """Tell the study how trial `number` ended, from what its run directory says."""
        try:
            self._tell_outcome(number, run_dir, process)
        except (RuntimeError, ValueError) as exc:  # told already (by a sweep that adopted it, say)
            self.say(f"trial {number}: not told again ({exc})")

    def _tell_outcome(self, number: int, run_dir: Path, process: subprocess.Popen | None) -> None:
        from optuna.trial import TrialState

        last = last_record(RunDir(run_dir).events) if run_dir.name else {}
        reason = last.get("reason") if last.get("event") == "RunFinished" else None
        if reason == "completed":
            value = metric_value(last.get("summary", {}), self.s.metric)
            if value is not None:
                self.study.tell(number, value)
                self.say(f"trial {number}: complete, {self.s.metric} {value:.4f}")
                return
            why = f"its run ended without a {self.s.metric}"
        elif reason == "pruned":
            self.study.tell(number, state=TrialState.PRUNED)
            self.say(f"trial {number}: pruned at step {last.get('step')}")
            return
        elif reason == "stopped":
            why = "its run was stopped before the end of its budget"
        else:
            state = run_state(run_dir) if run_dir.name else None
            code = process.returncode if process is not None else None
            # a run that never got going says why in its output; "no process record" says less
            told = state.reason if state is not None and state.reason != "no process record" else ""
            why = told or output_tail(run_dir) or f"its run ended with status {code}"
        self._set_reason(number, why)
        self.study.tell(number, state=TrialState.FAIL)
        self.say(f"trial {number}: failed: {why}")

    def _set_reason(self, number: int, why: str) -> None:
        # a trial asked by another sweep process has no Trial object here: its storage takes the note
        trial_id = self.study._storage.get_trial_id_from_study_id_trial_number(self.study._study_id, number)
        self.study._storage.set_trial_user_attr(trial_id, "reason", why[:300])

    def _stop_trials(self) -> None:
        from ..control.client import RunClient, RunUnavailable

        for process, run_dir in self.watched.values():
            try:
                with RunClient.connect(run_dir, timeout=5) as client:
                    client.call("stop")
            except RunUnavailable:
                if process is not None and process.poll() is None:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(process.pid, signal.SIGTERM)  # it saves at the next batch all the same


def _alive(attrs: dict[str, Any], who: str) -> bool:
    """Whether the process a trial's attributes name (its sweep's, or its run's) still runs here."""
    pid = attrs.get(f"{who}_pid")
    record = {"pid": pid, "pid_start": attrs.get(f"{who}_pid_start"), "host": attrs.get("host")}
    return isinstance(pid, int) and bool(process_alive(record))


def threading_main() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


