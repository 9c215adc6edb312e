"""`Trainer`: owns model, optimiser, data and device for either task and reports through events."""

from __future__ import annotations

import json
import math
import os
import random
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..analysis.gradients import grad_norms, is_finite, timestep_grad_norms
from ..config import ConfigError, RunConfig, check_world
from ..control.controls import (
    CheckRequest,
    ClassifyRequest,
    Controls,
    EvaluateRequest,
    InspectRequest,
    SampleRequest,
)
from ..data.names import NamesData
from ..data.text import CharCorpus
from ..data.vocab import Vocab
from ..errors import DataError, DeviceError, DistributedError
from ..events import (
    Checked,
    CheckpointSaved,
    Classified,
    DeviceSwitched,
    EpochFinished,
    Evaluated,
    EvaluationProgress,
    Event,
    GradientsMeasured,
    HyperparametersApplied,
    HyperparametersRejected,
    Inspected,
    RunFailed,
    RunFinished,
    RunPaused,
    RunResumed,
    RunStarted,
    Sampled,
    Sink,
    StepFinished,
    final_state,
)
from ..model import checkpoint as ckpt_io
from ..model.networks import count_parameters, detach_state, set_gemm_dtype, state_to
from ..model.sampling import classify, generate
from ..nn import fused, gpu_path, paths
from ..nn.precision import autocast
from ..nn.precision import resolve as resolve_precision
from ..rundir.eventlog import EventLog
from ..rundir.layout import RunDir
from ..rundir.liveness import process_start
from ..rundir.runs import new_run_id
from .allocator import keep_freed_memory
from .devices import resolve_device
from .distributed import Alone, Dist
from .optimizers import build_optimizer
from .service import RunService
from .tasks import EvalContext, EvaluationCancelled, make_task

OUT_OF_MEMORY = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)


def settled_config(config: RunConfig, resumed: ckpt_io.Checkpoint | None, has_data: bool) -> RunConfig:
    """The settings a run trains with: a resumed one keeps its checkpoint's model (and data, unless
    given other data); ConfigError naming each field that is wrong."""
    if resumed is not None:
        keep = ("cell", "hidden_size", "num_layers", "nonlinearity", "task", "dtype", "bidirectional", "arch")
        config = config.updated(**{k: getattr(resumed.config, k) for k in keep})
        if not config.data:
            config = config.updated(data=resumed.config.data)
    errors = config.validate()
    if errors:
        raise ConfigError(errors)
    if not config.data and not has_data:
        raise ConfigError({"data": "no corpus file or names directory given"})
    return config



@dataclass
class Plan:
    """What every rank does before the next batch, decided by rank 0 from the controls and broadcast."""

    act: str = "go"  # "go", "stop", or "wait" (paused: plan again)
    changes: dict[str, Any] = field(default_factory=dict)  # live hyperparameters to apply
    device: str | None = None  # the device to move to
    evaluate: list[bool] = field(default_factory=list)  # evaluations asked for: full split or not
    resume: bool = False  # a pause ends here
    paused: bool = False
    restore: bool = False  # the last good weights come back when the pause ends (after a NaN)
    lr: float = 0.0

class Trainer:
    """Trains a CharLM on a corpus or a NameClassifier on a names directory.

    What differs between the two (data, batches, loss, evaluation, the epoch's sample) is the
    task object (`tasks`); the trainer holds what they share: the loop, controls, events,
    checkpoints, device and precision.
    Construction loads data and builds the model, so bad input fails before anything runs.
    `run()` trains until the epochs or the time budget are used up or `controls.stop()` is called,
    reporting every step, evaluation, sample, checkpoint and pause to `sink` and to
    `runs/<run-id>/events.jsonl`. It never prints. With `serve` (the default) the run also has a
    control endpoint and a liveness record beside its log, so other processes can follow and
    steer it (see `service`). With `dist`, this is one rank of a data-parallel job (see
    `distributed`): it trains on its share of every batch and does what rank 0 decides.
    """

    def __init__(self, config: RunConfig, sink: Sink | None = None, runs_dir: str | os.PathLike = "runs",
                 controls: Controls | None = None,
                 resume: str | os.PathLike | ckpt_io.Checkpoint | None = None,
                 run_id: str | None = None, data: CharCorpus | NamesData | None = None,
                 diag_every: int = 50, diag_interval: float = 2.0, serve: bool = True,
                 dist: Dist | None = None, reuse_dir: bool = False,
                 tags: dict[str, Any] | None = None, origin: str = "",
                 auto: dict[str, Any] | None = None) -> None:
        resumed = resume if isinstance(resume, ckpt_io.Checkpoint) else None
        if resume and resumed is None:
            resumed = ckpt_io.load(resume)
        config = settled_config(config, resumed, data is not None)
        # one process trains through the same small interface as a torchrun rank (distributed.py)
        self.dist: Dist | Alone = dist or Alone(config.device)
        self.world = self.dist.world
        check_world(config, self.world)
        self.config = config
        self.main = self.dist.main  # the rank that logs, saves, samples and serves
        self.reuse_dir = reuse_dir
        self.tags = dict(tags or {})  # written beside the settings in config.json (a sweep's trial)
        self.origin = origin  # a resumed run: where its settings came from, for its log
        self.auto = dict(auto or {})  # what the command fitted to the budget (autofit), for the log
        self.sink = sink
        self.controls = controls or Controls()
        self.diag_every = diag_every
        # gradient measurements cost a pass of their own; a fast model would also flood the log
        self.diag_interval = diag_interval
        self.serve = serve
        self.device = resolve_device(self.dist.device_name())
        self.dtype = torch.float64 if config.dtype == "float64" else torch.float32
        torch.manual_seed(config.seed)
        self.rng = random.Random(config.seed)

        self.task = make_task(config, data, resumed, self.dist)

        self.model: nn.Module = ckpt_io.build_model(config, len(self.vocab), len(self.labels))
        self.model.to(device=self.device, dtype=self.dtype)
        self.precision, self.precision_why = resolve_precision(config, self.device)
        self.recurrent_path = ""  # how the layers run, and why: set when the run starts
        if self.precision == "bf16" and config.impl == "scratch":
            set_gemm_dtype(self.model, torch.bfloat16)
        # what the steps call: the model itself, or DDP around it, which averages the gradients
        self.net: nn.Module = self.dist.wrap(self.model, self.device, config.seed)
        self.optimizer = self._make_optimizer()
        self.step = 0
        self.epoch = 0
        self.window = 0  # next batch index inside the epoch
        self.best_val_loss = math.inf
        self.elapsed_before = 0.0
        self.resumed_from_step = 0
        if resumed is not None:
            self._restore(resumed)
        self.run_id = run_id or new_run_id(config)
        self.run_dir = Path(runs_dir) / self.run_id
        self.files = RunDir(self.run_dir)  # where each of its files goes
        self._log: EventLog | None = None
        self.service: RunService | None = None
        self._needs_restore = False
        # what the task carries from batch to batch (the LM's hidden state); a run resumed mid-epoch
        # goes on from the state its checkpoint saved, as if it had never stopped
        self._state = self._resumed_state(resumed)
        self._recent_losses: list[float] = []
        self._last_val: dict[str, Any] = {}
        self._last_val_step = -1
        self._sampled = False  # whether this process has shown a sample yet: a short run ends with one
        self._train_time = 0.0
        self._train_items = 0
        self._rate = 0.0
        self._started: float | None = None  # clock() when training began
        # what run time is measured with: the time budget, ETA and elapsed (a test may give it a fake)
        self.clock = time.perf_counter
        self._paused_time = 0.0
        self._in_pause = False  # a RunPaused went out and no RunResumed yet
        self._pause_clock: float | None = None  # when the current idle stretch began
        self._last_eval_time = self.elapsed_before  # run time of the last evaluation
        self._last_diag = -math.inf
        self._lr = config.lr  # this step's learning rate, as rank 0 computed it

    # -- setup helpers ------------------------------------------------------------------------------
    def _make_optimizer(self) -> torch.optim.Optimizer:
        c = self.config
        return build_optimizer(c.optimizer, self.model.parameters(), c.lr, c.weight_decay)

    def _load_weights(self, ck: ckpt_io.Checkpoint) -> None:
        """Model and (same optimiser only) optimiser state from a checkpoint, on this device."""
        try:
            self.model.load_state_dict(ck.model_state)
        except RuntimeError as exc:
            raise ckpt_io.CheckpointError(
                f"checkpoint does not fit this model: {str(exc).strip().splitlines()[-1].strip()}") from None
        if ck.optimizer_state and ck.config.optimizer == self.config.optimizer:
            # the implementation (fused or not) is this torch's choice, not the checkpoint's
            chosen = {k: v for k, v in self.optimizer.param_groups[0].items() if k in ("fused", "foreach")}
            self.optimizer.load_state_dict(ck.optimizer_state)
            # lr is set every step; weight decay comes from this run's settings
            for group in self.optimizer.param_groups:
                group["weight_decay"] = self.config.weight_decay
                group.update(chosen)
            self._move_optimizer_state(self.device)

    def _restore(self, resumed: ckpt_io.Checkpoint) -> None:
        self._load_weights(resumed)
        self.step = resumed.step
        self.epoch = resumed.epoch
        self.window = int(resumed.extra.get("window", 0))
        self.best_val_loss = resumed.best_val_loss
        self.elapsed_before = float(resumed.extra.get("elapsed", 0.0))
        self.resumed_from_step = resumed.step

    # -- reporting ----------------------------------------------------------------------------------
    def emit(self, event: Event) -> None:
        if isinstance(event, Sampled) or (isinstance(event, EpochFinished) and event.sample):
            self._sampled = True
        if self._log is not None:
            self._log.write(event)
        if self.service is not None:
            self.service.observe(event)
        if self.sink is not None:
            self.sink(event)

    def _record_from_service(self, event: Event) -> None:
        """An event the run's service reports from its own thread: to the log and the sink."""
        log = self._log
        if log is not None:
            log.write(event)  # EventLog takes writers from any thread
        if self.sink is not None:
            self.sink(event)

    @property
    def items_name(self) -> str:
        return self.task.items_name

    @property
    def vocab(self) -> Vocab:
        return self.task.data.vocab

    @property
    def labels(self) -> list[str]:
        return self.task.labels

    def elapsed(self) -> float:
        if self._started is None:
            return self.elapsed_before
        now = self.clock()
        # an idle stretch still going on counts as paused too (a run stopped while paused, say)
        idle = now - self._pause_clock if self._pause_clock is not None else 0.0
        return self.elapsed_before + now - self._started - self._paused_time - idle

    def progress(self) -> float:
        """Fraction of the run done: the largest of the epoch, time-budget and step fractions."""
        c = self.config
        parts = [self.step / c.max_steps] if c.max_steps > 0 else []
        if c.time_budget > 0:
            parts.append(self.elapsed() / c.time_budget)
        if c.epochs > 0:
            per_epoch = max(1, self.batches_per_epoch())
            done = self.epoch * per_epoch + self.window
            parts.append(done / (c.epochs * per_epoch))
        return min(1.0, max(parts)) if parts else 0.0

    def batches_per_epoch(self) -> int:
        return self.task.batches_per_epoch(self.config)

    def lr_now(self) -> float:
        c = self.config
        if c.lr_schedule == "constant" or (c.epochs == 0 and c.time_budget == 0 and c.max_steps == 0):
            return c.lr
        # cosine from lr down to lr/10 over the run; the last stretch at a small lr helps most
        return c.lr * (0.1 + 0.45 * (1.0 + math.cos(math.pi * self.progress())))

    # -- the loop -----------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        """Train until done or stopped; returns the summary also sent in RunFinished."""
        if self.main:
            self._open_run_dir()
        final, reason = "failed", "interrupted"
        try:
            self.model.train()
            # steps allocate the same large buffers over and over; keeping them in the heap spares page faults
            keep_freed_memory()
            # fp32 is IEEE fp32 on every path and device (a later switch to a GPU included): no TF32
            gpu_path.set_fp32_policy()
            # build or load the fused kernels now, not inside the first timed step
            scratch = self.config.arch == "workbench" and self.config.impl == "scratch"
            if scratch and self.service is not None and self.dtype == torch.float32:
                if self.device.type == "cpu" and fused.needs_build():
                    self.service.note("building the fused CPU kernels (first run only, about 15 s)")
                elif self.device.type == "cuda":
                    self.service.note("checking the Triton kernels on this GPU (first use, a few seconds)")
            path = paths.describe(self.device, self.dtype, self.precision, self.config.arch, self.config.impl,
                                  self.config.cell)
            if scratch and self.service is not None and self.device.type == "cuda":
                # a fallback off the GPU's kernels: `workbench runs` shows it under the run
                notice = gpu_path.fallback_notice(self.device) if self.dtype == torch.float32 else ""
                self.service.liveness.update(write=True, path_notice=notice)
            path += f"; precision {self.precision} ({self.precision_why})"
            self.recurrent_path = path
            ranks = self.dist.gather_objects({"rank": self.dist.rank, "pid": os.getpid(),
                                              "pid_start": process_start(os.getpid()),
                                              "host": socket.gethostname()})
            if self.world > 1 and self.service is not None:  # `ctl stop --wait` waits for every rank
                self.service.liveness.update(write=True, world_size=self.world, ranks=ranks)
            self._started = self.clock()
            self.emit(RunStarted(
                self.run_id, str(self.run_dir), self.config.task, self.config.to_dict(), str(self.device),
                count_parameters(self.model), *self.task.sizes(),
                self.resumed_from_step, path, self.world, torch.get_num_threads(), self.origin, self.auto))
            summary = self.finish(self._loop())
            # how live.json records the end: finished, pruned (by its sweep) or stopped
            final = final_state(summary["reason"])
            reason = ""
            return summary
        except Exception as exc:
            lost = self.dist.lost_contact(exc)
            if lost is not None:
                last = self.files.last
                kept = f"; the last checkpoint is {last}" if last.exists() else ""
                exc = DistributedError(f"{lost}{kept}")
            reason = str(exc) if isinstance(exc, DistributedError) else f"{type(exc).__name__}: {exc}"
            self.emit(RunFailed(self.step, reason))
            if isinstance(exc, DistributedError):
                raise exc from None
            raise
        finally:
            if self._log is not None:
                self._log.close()
                self._log = None
            if self.service is not None:
                self.service.close(final, reason)

    def _open_run_dir(self) -> None:
        """The run directory with config.json, events.jsonl and, when serving, the endpoint."""
        if self.files.has_run_events() and not self.reuse_dir:
            raise DataError(f"{self.run_dir}: already holds a run; give another run id")
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self.files.config_file.write_text(
                json.dumps({**self.config.to_dict(), **self.tags}, indent=2) + "\n")
            self._log = EventLog(self.files.events)
        except OSError as exc:
            raise DataError(f"{self.run_dir}: cannot write the run there "
                            f"({exc.strerror or exc}); choose another --runs-dir") from None
        if self.serve:
            self.service = RunService(self.run_dir, self.run_id, self.config.task, self.controls,
                                      lambda: self.config, str(self.device), world_size=self.world,
                                      record=self._record_from_service)
            self.service.start()

    def _loop(self) -> str:
        c = self.config
        # a resumed run whose budget or step limit is already spent has nothing left to train
        if self._tell(self._limits_reached() if self.main else None):
            return "completed"
        while True:
            if c.epochs > 0 and self.epoch >= c.epochs:
                return "completed"
            batches = self._epoch_batches()
            for batch in batches:
                outcome = self._between_batches()
                if outcome == "stop":
                    return self.controls.stop_reason
                try:
                    self.train_step(batch)
                except OUT_OF_MEMORY as exc:
                    if self.world > 1:
                        raise  # the other ranks are already in the next all-reduce: end the job
                    self._on_out_of_memory(exc)
                self.window += 1
                periodic, done = self._after_step()
                if periodic:
                    self._periodic()
                if done:
                    return "completed"
            # a NaN on the epoch's last batch: wait for resume (which restores) before saving anything
            if self._in_pause and self._between_batches() == "stop":
                return self.controls.stop_reason
            self.end_epoch()

    def _tell(self, decision: Any) -> Any:
        """Rank 0's decision on every rank: the same step, the same settings, the same stop."""
        return self.dist.broadcast(decision)

    def _after_step(self) -> tuple[bool, bool]:
        """(evaluate and save now, the run is done): by the clock, so rank 0 decides for all."""
        due = None
        if self.main:
            c = self.config
            elapsed = self.elapsed()
            # never while paused: after a NaN the weights may be bad and must not be saved
            periodic = (c.eval_interval > 0 and not self._in_pause
                        and elapsed - self._last_eval_time >= c.eval_interval)
            due = (periodic, self._limits_reached())
        return self._tell(due)

    def _limits_reached(self) -> bool:
        """The time budget is spent or the step limit reached (the epochs are counted by the loop)."""
        c = self.config
        return (c.time_budget > 0 and self.elapsed() >= c.time_budget) or (0 < c.max_steps <= self.step)

    def _epoch_batches(self) -> Iterator[Any]:
        if self.window == 0:
            self._state = None  # a new epoch starts from a zero state
        yield from self.task.epoch_batches(self.config, self.epoch, self.window)

    def _between_batches(self) -> str:
        """Honour controls; blocks while paused. Returns 'stop' or 'go'.

        Rank 0 reads the controls and decides (`_plan`); every rank then does the same thing
        (`_carry_out`), so ranks change settings, evaluate, pause and stop at the same step.
        """
        while True:
            outcome = self._carry_out(self._tell(self._plan() if self.main else None))
            if outcome != "wait":
                return outcome

    def _plan(self) -> Plan:
        """What every rank does before the next batch: read from the controls, on rank 0 only."""
        ctl = self.controls
        plan = Plan(changes=self._take_changes(), device=ctl.take_device())
        if plan.device and self.world > 1:
            self.emit(HyperparametersRejected(self.step, {"device": "a job of several ranks stays on "
                                                                    "its devices"}))
            plan.device = None
        for q in ctl.take_queries():
            if isinstance(q, EvaluateRequest):
                plan.evaluate.append(q.full)
            else:
                self._answer(q)  # rank 0's weights are every rank's
        if ctl.stopped:
            plan.act = "stop"
        elif ctl.paused:
            if not self._in_pause:
                self._announce_pause("paused by user")
            if self._pause_clock is None:
                self._pause_clock = self.clock()
            if ctl.take_single_step():
                # one batch runs and the run stays paused; the wait so far does not count as run time
                self._stop_pause_clock()
            else:
                if self._log is not None:
                    self._log.flush()  # a rolled-up step must not wait for the pause to end
                ctl.wait(0.1)
                plan.act = "wait"
        else:
            self._stop_pause_clock()
            plan.resume = self._in_pause
        plan.paused, plan.restore = self._in_pause, self._needs_restore
        plan.lr = self.lr_now()
        return plan

    def _carry_out(self, plan: Plan) -> str:
        """Do what `_plan` decided; returns 'go', 'stop' or 'wait' (paused: plan again)."""
        if plan.changes:
            self.config = self.config.updated(**plan.changes)
            for group in self.optimizer.param_groups:
                group["weight_decay"] = self.config.weight_decay
            self.emit(HyperparametersApplied(self.step, plan.changes))
        if plan.device:
            self.switch_device(plan.device)
        for full in plan.evaluate:
            try:
                self.emit(Evaluated(self.step, self.epoch, **self.evaluate(full=full)))
            except EvaluationCancelled:
                pass  # stopped meanwhile: the run ends with its routine evaluation
        self._in_pause, self._needs_restore = plan.paused, plan.restore
        if plan.resume:
            self._in_pause = False
            if self._needs_restore:
                self._restore_last_good()
            self.emit(RunResumed(self.step))
        self._lr = plan.lr
        return plan.act

    def _announce_pause(self, reason: str) -> None:
        """Pause (if the user has not already) and say why, once per pause."""
        self.controls.pause()
        self._in_pause = True
        self.emit(RunPaused(self.step, reason))

    def _stop_pause_clock(self) -> None:
        if self._pause_clock is not None:
            self._paused_time += self.clock() - self._pause_clock
            self._pause_clock = None

    def _take_changes(self) -> dict[str, Any]:
        """The queued hyperparameter changes that validate; the others are rejected with a reason."""
        changes = self.controls.take_updates()
        if changes:
            merged = self.config.updated(**changes)
            errors = {k: v for k, v in merged.validate().items() if k in changes}
            if errors:
                # not a pause: the run keeps going with the values it had
                self.emit(HyperparametersRejected(self.step, errors))
                changes = {k: v for k, v in changes.items() if k not in errors}
        return changes

    def switch_device(self, name: str) -> None:
        """Move model, optimiser state and carried hidden state together; stay put on failure."""
        old = self.device
        try:
            target = resolve_device(name)
            self.model.to(target)
            self._move_optimizer_state(target)
            self._state = state_to(self._state, target)
            if target.type == "cuda":
                torch.cuda.synchronize(target)
        except (DeviceError, RuntimeError) as exc:
            self.model.to(old)
            self._move_optimizer_state(old)
            self._state = state_to(self._state, old)
            msg = str(exc).splitlines()[0]
            self._announce_pause(f"could not switch to {name}: {msg}; still on {old}")
            return
        self.device = target
        self.config = self.config.updated(device=name)
        self.emit(DeviceSwitched(self.step, str(target)))

    def _move_optimizer_state(self, device: torch.device) -> None:
        # Adam keeps 'step' on the CPU unless fused or capturable, where it lives with the parameters
        step_moves = any(g.get("fused") or g.get("capturable") for g in self.optimizer.param_groups)
        for state in self.optimizer.state.values():
            for key, value in state.items():
                if isinstance(value, Tensor) and (key != "step" or step_moves):
                    state[key] = value.to(device)

    def _answer(self, q: SampleRequest | ClassifyRequest | InspectRequest | CheckRequest) -> None:
        if isinstance(q, SampleRequest) and self.task.writes_text:
            g = torch.Generator().manual_seed(self.rng.randrange(2**31))
            text = generate(self.model, self.vocab, q.length, q.prime, q.temperature, q.top_k, g)
            self.emit(Sampled(self.step, text, q.temperature, q.prime, q.request, "asked"))
        elif isinstance(q, ClassifyRequest) and self.task.classifies:
            results = classify(self.model, self.vocab, self.labels, list(q.names), q.top_k)
            self.emit(Classified(self.step, list(q.names), results, q.request))
        elif isinstance(q, InspectRequest):
            from ..analysis.inside import inspection

            result = inspection(self.model, self.vocab, q.text, self.labels or None, list(q.units))
            self.emit(Inspected(self.step, result, q.request))
        elif isinstance(q, CheckRequest):
            from ..analysis.check import check_model

            try:
                report = check_model(self.config, self.vocab, self.labels, self.model.state_dict(),
                                     self.task.data)
            except ValueError as exc:
                report = {"error": str(exc)}
            self.emit(Checked(self.step, report, q.request))

    def train_step(self, batch: Any) -> None:
        """One optimisation step on one batch, with NaN/inf protection and reporting."""
        c = self.config
        t0 = time.perf_counter()
        lr = self._lr
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.model.train()
        out = self.task.forward(self.net, batch, self._state, c, self.device, self.dtype, self._autocast)
        loss, items = out.loss, out.items
        self.optimizer.zero_grad(set_to_none=True)
        out.scaled.backward()  # under DDP this also averages the gradients over the ranks
        measure = (self.main and self.diag_every > 0 and self.step % self.diag_every == 0
                   and time.monotonic() - self._last_diag >= self.diag_interval)
        if measure:
            self._last_diag = time.monotonic()
            total, per_param, per_layer = grad_norms(self.model)
        max_norm = c.clip if c.clip > 0 else math.inf
        norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm)
        # every rank's (loss sum, items, norm, seconds), one device sync: the batch's loss and one NaN
        # verdict for all (one row when training alone)
        f64 = torch.float64
        on_device = torch.stack([loss.detach().to(f64) * items, norm.detach().to(f64)]).cpu()  # the one sync
        mine = torch.stack([on_device[0], torch.tensor(float(items), dtype=f64), on_device[1],
                            torch.tensor(time.perf_counter() - t0, dtype=f64)])
        rows = self.dist.gather(mine).tolist()
        count = sum(r[1] for r in rows)
        loss_v = sum(r[0] for r in rows) / max(count, 1.0)
        norm_v = rows[0][2]  # the gradients are averaged, so every rank has the same norm
        items = int(count)
        rank_rates = [round(r[1] / r[3], 1) if r[3] > 0 else 0.0 for r in rows] if self.world > 1 else []
        if not is_finite(loss_v, norm_v):
            self._on_non_finite(loss_v, norm_v)
            return
        self.optimizer.step()
        self._state = out.state
        self.step += 1
        dt = time.perf_counter() - t0
        self._train_time += dt
        self._train_items += items
        rate = items / dt if dt > 0 else 0.0
        self._rate = rate if self._rate == 0 else 0.9 * self._rate + 0.1 * rate
        self._recent_losses.append(loss_v)
        del self._recent_losses[:-200]
        if self.main:
            p, elapsed = self.progress(), self.elapsed()
            eta = elapsed * (1 - p) / p if p > 0 else -1.0
            # the epoch being trained, counted from 1 (EpochFinished reports the one just completed)
            self.emit(StepFinished(self.step, self.epoch + 1, loss_v, norm_v, min(norm_v, max_norm), lr,
                                   self._rate, elapsed, p, eta, 1, self.world, rank_rates))
        if measure:
            per_t = timestep_grad_norms(self.model, *out.probe)
            # four significant digits are what the panel shows; full floats would double the log
            self.emit(GradientsMeasured(self.step, total, _rounded(per_param), _rounded(per_layer),
                                        [_round(v) for v in per_t]))
        if c.eval_every and self.step % c.eval_every == 0:
            self.emit(Evaluated(self.step, self.epoch, **self.evaluate()))

    def _on_non_finite(self, loss_v: float, norm_v: float) -> None:
        """Skip the update, pause, and keep the last good checkpoint untouched."""
        what = "loss" if not math.isfinite(loss_v) else "gradient norm"
        self.optimizer.zero_grad(set_to_none=True)
        # a non-finite loss means the weights themselves may be bad: reload them on resume
        self._needs_restore = not all(torch.isfinite(p).all() for p in self.model.parameters())
        self._state = None
        self._announce_pause(f"non-finite {what} ({loss_v if what == 'loss' else norm_v}) "
                             f"at step {self.step + 1}; update skipped, last checkpoint kept. "
                             "Lower lr or clip, then resume")

    def _on_out_of_memory(self, exc: Exception) -> None:
        """Skip the batch, free what the step held, fall back to the CPU and pause."""
        self.optimizer.zero_grad(set_to_none=True)
        self._state = None
        where = str(self.device)
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        if self.device.type != "cpu":
            self.switch_device("cpu")
        first = (str(exc).splitlines() or ["out of memory"])[0][:120]
        self._announce_pause(f"out of memory on {where} at step {self.step + 1} ({first}); "
                             f"batch skipped, now on {self.device}. Lower batch_size, "
                             "seq_len or hidden_size, or resume as it is")

    def _restore_last_good(self) -> None:
        """Back to the weights of last.pt; under torchrun rank 0 reads it and sends it to the others."""
        last = self.files.last
        ck = self._tell(ckpt_io.load(last) if self.main and last.exists() else None)
        if ck is not None:
            self._load_weights(ck)
        self._needs_restore = False

    # -- evaluation, epochs, end --------------------------------------------------------------------
    def _autocast(self) -> Any:
        """torch.autocast for torch.nn layers in a bf16 run; the scratch models cast their own GEMMs."""
        return autocast(self.precision if self.config.impl == "torch" else "fp32", self.device)

    @torch.no_grad()
    def evaluate(self, full: bool = False) -> dict[str, Any]:
        """Validation loss (nats per char or per name), plus accuracy and balanced accuracy for names.

        The language model reads the routine subset of the validation split (`val_chars`), or all
        of it when `full`; a full evaluation stops early (EvaluationCancelled) if the run is stopped.
        """
        self.model.eval()
        ctx = EvalContext(self.device, self.dtype, self.dist, lambda: self.controls.stopped,
                          _EvaluationProgress(self, full))
        try:
            with self._autocast():
                result = self.task.evaluate(self.model, self.config, full, ctx)
        finally:
            self.model.train()
        if not full:  # the routine figure (which reads all of a small split); an asked-for full one is apart
            self._last_val, self._last_val_step = result, self.step
        self._last_eval_time = self.elapsed()
        return result

    def _periodic(self) -> None:
        """Between epochs that take long: evaluate, sample and save on the `eval_interval` cadence."""
        c = self.config
        result = self.evaluate()
        self.emit(Evaluated(self.step, self.epoch, **result))
        # a classifier's held-out names wait for the epoch's end
        if self.main and self.task.writes_text and c.sample_length > 0:
            text = self.task.sample(self.model, c, c.seed + self.step)
            self.emit(Sampled(self.step, text, c.temperature, reason="periodic"))
        improved = self._note_best(result["val_loss"])
        # a run killed hours into an epoch resumes from here, not from the epoch's start
        self.save_checkpoint("periodic", best=improved)

    def train_loss(self) -> float:
        recent = self._recent_losses[-100:]
        return sum(recent) / len(recent) if recent else math.nan

    def end_epoch(self) -> None:
        """Evaluate, sample, checkpoint, and report the epoch."""
        c = self.config
        if self._needs_restore:
            self._restore_last_good()  # reached by single steps over a NaN pause: save no bad weights
        self.epoch += 1
        self.window = 0
        result = self.evaluate()
        sample = self.task.sample(self.model, c, c.seed + self.epoch) if self.main else ""
        improved = self._note_best(result["val_loss"])
        self.emit(EpochFinished(self.epoch, self.step, self.train_loss(), result["val_loss"], sample,
                                c.temperature, result.get("val_accuracy"),
                                result.get("balanced_accuracy"), result.get("confusion", []),
                                list(self.labels)))
        self.save_checkpoint("epoch", best=improved)

    def _note_best(self, val_loss: float) -> bool:
        """Whether `val_loss` is the best of the run's whole lineage so far; kept as the best if so."""
        if val_loss < self.best_val_loss:
            self.best_val_loss = val_loss
            return True
        return False

    def save_checkpoint(self, reason: str, best: bool = False) -> Path:
        """last.pt (and best.pt); under torchrun rank 0 writes them, and they fit any world size."""
        carried = self._carried_state()  # a collective under torchrun: every rank takes part
        if not self.main:
            return self.files.last
        extra = {"window": self.window, "elapsed": self.elapsed(), "run_id": self.run_id}
        if carried is not None:
            extra["state"] = carried
        ck = ckpt_io.Checkpoint(
            self.config, self.vocab, self.model.state_dict(), self.optimizer.state_dict(),
            list(self.labels), self.step, self.epoch, self.best_val_loss, extra)
        path = ckpt_io.save(ck, self.files.last)
        self.emit(CheckpointSaved(self.step, str(path), reason))
        if best:
            ckpt_io.save(ck, self.files.best)
        return path

    def _carried_state(self) -> Any:
        """Mid-epoch, the hidden state every stream carries into its next window, on the CPU.

        Under torchrun each rank holds its own streams' rows: they are gathered in rank order,
        which is the streams' order, so the checkpoint holds all of them and fits any world size.
        """
        if not self.task.carries_state(self.config):
            return None  # the same on every rank: none of them gathers
        carries = self.window > 0 and self._state is not None
        state = state_to(detach_state(self._state), torch.device("cpu")) if carries else None
        parts = self.dist.gather_objects(state)
        if any(p is None for p in parts):
            return None
        if isinstance(parts[0], tuple):
            return tuple(torch.cat([p[i] for p in parts], dim=1) for i in range(len(parts[0])))
        return torch.cat(parts, dim=1)

    def _resumed_state(self, resumed: ckpt_io.Checkpoint | None) -> Any:
        """The carried state a checkpoint saved mid-epoch, this rank's rows of it; None to start from zeros.

        It is used only where it fits: the same number of streams and the same layer shapes.
        """
        c = self.config
        saved = resumed.extra.get("state") if resumed is not None else None
        if saved is None or self.window == 0 or not self.task.carries_state(c) or c.arch != "workbench":
            return None
        parts = tuple(saved) if isinstance(saved, (tuple, list)) else (saved,)
        shape = (c.num_layers, c.batch_size, c.hidden_size)  # a language model reads one way
        if len(parts) != (2 if c.cell == "lstm" else 1) or any(
                not isinstance(p, Tensor) or tuple(p.shape) != shape for p in parts):
            return None
        rows = self.dist.share(self.config.batch_size)
        parts = tuple(p[:, rows].to(self.device, self.dtype).contiguous() for p in parts)
        return parts if len(parts) > 1 else parts[0]

    def finish(self, reason: str) -> dict[str, Any]:
        """Final evaluation and checkpoint; returns the run summary."""
        if self._needs_restore:
            self._restore_last_good()  # stopped while paused on NaN weights: save the good ones
        if self._last_val_step == self.step:
            result = self._last_val
        else:  # shown like any evaluation: a run stopped before its first one still has its figures
            result = self.evaluate()
            self.emit(Evaluated(self.step, self.epoch, **result))
        c = self.config
        if self.main and not self._sampled and self.task.writes_text and c.sample_length > 0:
            self.emit(Sampled(self.step, self.task.sample(self.model, c, c.seed + self.step), c.temperature,
                              reason="final"))
        improved = self._note_best(result["val_loss"])
        path = self.save_checkpoint(reason, best=improved or self.best_val_loss == result["val_loss"])
        rate = self._train_items / self._train_time if self._train_time > 0 else 0.0
        summary: dict[str, Any] = {
            "run_id": self.run_id, "run_dir": str(self.run_dir), "reason": reason,
            "steps": self.step, "epochs": self.epoch + self.window / max(1, self.batches_per_epoch()),
            "elapsed": round(self.elapsed(), 2), "train_loss": self.train_loss(),
            "checkpoint": str(path), "device": str(self.device),
            "parameters": count_parameters(self.model),
            "world_size": self.world, "impl": self.config.impl, "precision": self.precision,
            "recurrent_path": self.recurrent_path,
        }
        if self.auto:
            summary["auto"] = self.auto
        summary.update(self.task.summary(result, self.best_val_loss, rate))
        self.emit(RunFinished(self.step, reason, summary))
        return summary


def _round(value: float) -> float:
    return float(f"{value:.4g}")


def _rounded(values: dict[str, float]) -> dict[str, float]:
    return {k: _round(v) for k, v in values.items()}


class _EvaluationProgress:
    """Reports how far a long evaluation has got, at most twice a second, and only if it is long."""

    def __init__(self, trainer: Trainer, full: bool) -> None:
        self.trainer, self.full = trainer, full
        self.last = time.monotonic()

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self.last >= 0.5 and done < total:
            self.last = now
            self.trainer.emit(EvaluationProgress(self.trainer.step, done, total, self.full))
