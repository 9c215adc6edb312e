"""The Textual app: a remote control and a view over rnn_engine's Trainer, keyboard first."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, NamedTuple

from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import (
    DataTable,
    Footer,
    Header,
    Input,
    TabbedContent,
    TabPane,
)
from textual.worker import Worker, WorkerState

from rnn_engine import checkpoint as ckpt_io
from rnn_engine import fused
from rnn_engine.config import LIVE_FIELDS, ConfigError, RunConfig, default_config
from rnn_engine.controls import Controls
from rnn_engine.data import Vocab
from rnn_engine.events import (
    CheckpointSaved,
    Classified,
    DeviceSwitched,
    EpochFinished,
    Evaluated,
    Event,
    GradientsMeasured,
    HyperparametersApplied,
    HyperparametersRejected,
    RunFailed,
    RunFinished,
    RunPaused,
    RunResumed,
    RunStarted,
    Sampled,
    StepFinished,
)
from rnn_engine.runners import ProcessControls, ProcessRunner, ThreadRunner, TrainingFailed
from rnn_engine.sampling import classify, generate
from rnn_engine.trainer import available_devices, error_message

from .messages import CoalescingSink, RunEnded, TrainerEvents
from .paths import default_data
from .screens.device import DeviceScreen
from .screens.help import HelpScreen
from .screens.sample import SampleScreen, SampleSettings
from .widgets.classifier_query import ClassifierQuery
from .widgets.grad_panel import GradientPanel
from .widgets.hyper_form import HyperparameterForm
from .widgets.loss_panel import LossPanel
from .widgets.runs_list import RunsList
from .widgets.sample_log import SampleLog
from .widgets.status_line import StatusLine
from .widgets.text_log import TextLog

# (config, runs_dir, resume checkpoint or None) -> an object with .controls and .run(sink)
RunnerFactory = Callable[[RunConfig, Path, "str | None"], "ProcessRunner | ThreadRunner"]


class Snapshot(NamedTuple):
    """A finished or opened model, kept for sampling and classifying between runs."""

    model: Any
    vocab: Vocab
    labels: list[str]
    task: str


# (title, key, help, method) of each action the command palette offers
PALETTE = [
    ("Start a run", "s", "train with the Hyperparameters tab's values", "action_start"),
    ("Pause or resume", "p", "pause the run at the next batch, or continue it", "action_pause"),
    ("Single step", "n", "while paused, train exactly one batch", "action_single_step"),
    ("Stop the run", "x", "stop at the next batch and save a checkpoint", "action_stop"),
    ("Apply live hyperparameters", "a", "lr, clip, temperature, top_k, weight_decay, sample_length",
     "action_apply"),
    ("Generate text now", "g", "choose temperature, priming text and length", "action_sample"),
    ("Choose the device", "d", "CPU, CUDA or MPS; a run moves at the next batch", "action_device"),
    ("Switch task", "t", "character language model ↔ name classifier", "action_switch_task"),
    ("Resume or fork the selected run", "r on Runs", "continue from its checkpoint as a new run",
     "action_resume_run"),
    ("Help", "?", "keys and how to read the panes", "action_help"),
]


class WorkbenchApp(App[None]):
    """Train, watch and steer recurrent networks from the terminal."""

    CSS_PATH = "workbench.tcss"
    TITLE = "RNN Workbench"

    BINDINGS = [
        Binding("s,f5", "start", "Start"),
        Binding("p,f6", "pause", "Pause/resume"),
        Binding("n,f8", "single_step", "Step"),
        Binding("x,f7", "stop", "Stop"),
        Binding("a", "apply", "Apply live"),
        Binding("g", "sample", "Sample"),
        Binding("d", "device", "Device"),
        Binding("t", "switch_task", "Task"),
        Binding("r", "resume_run", "Resume run", show=False),
        Binding("1", "tab('train')", "Train", show=False),
        Binding("2", "tab('hyper')", "Params", show=False),
        Binding("3", "tab('classify')", "Classifier", show=False),
        Binding("4", "tab('runs')", "Runs", show=False),
        Binding("escape", "leave_field", "Leave field", show=False),
        Binding("question_mark,f1", "help", "Help"),
        Binding("q,ctrl+q", "quit", "Quit", priority=False),
    ]

    def __init__(self, config: RunConfig, runs_dir: Path | str = "runs",
                 runner_factory: RunnerFactory = ProcessRunner) -> None:
        super().__init__()
        self.config = config
        self.runs_dir = Path(runs_dir)
        self.runner_factory = runner_factory
        self.controls: Controls | ProcessControls | None = None
        self.worker: Worker | None = None
        self.running_config: RunConfig | None = None
        self.sink: CoalescingSink | None = None
        # the last finished or opened model, for sampling and classifying between runs
        self.snapshot: Snapshot | None = None
        self.state = "idle"

    # -- layout -------------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Header()
        yield StatusLine(id="status")
        with TabbedContent(initial="train", id="tabs"):
            with TabPane("Train [1]", id="train"):
                with Horizontal():
                    with Vertical(id="train-left"):
                        yield LossPanel(id="loss")
                        yield SampleLog(id="samples")
                    with Vertical(id="train-right"):
                        yield GradientPanel(id="grads")
                        yield TextLog(id="activity")
            with TabPane("Hyperparameters [2]", id="hyper"):
                yield HyperparameterForm(self.config, id="form")
            with TabPane("Classifier [3]", id="classify"):
                yield ClassifierQuery(id="classifier")
            with TabPane("Runs [4]", id="runs"):
                yield RunsList(id="runs-table")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#activity", TextLog).border_title = "activity"
        self.sub_title = self._subtitle()
        self.query_one(RunsList).reload(self.runs_dir)
        self.log_activity(f"data: {Path(self.config.data).name or '(none)'}")
        if fused.needs_build():
            self.log_activity("building the fused CPU kernels in the background (first start only)…")
            self._build_kernels()

    @work(thread=True, exclusive=True, exit_on_error=False, group="kernels", description="kernels")
    def _build_kernels(self) -> None:
        # g++ runs in a subprocess, so this thread mostly waits. A run started meanwhile builds its own
        # copy in its child process; each build is renamed into the cache whole, so either one wins.
        fused.load()
        self.call_from_thread(self.log_activity, f"recurrence: {fused.status()}")

    def _subtitle(self) -> str:
        task = "char language model" if self.config.task == "charlm" else "name classifier"
        return f"{task} · {Path(self.config.data).name or 'no data'}"

    def get_system_commands(self, screen) -> Iterable[SystemCommand]:
        """The command palette (Ctrl+P) lists every action with its key."""
        yield from super().get_system_commands(screen)
        for title, key, help_text, action in PALETTE:
            yield SystemCommand(f"{title} ({key})", help_text, getattr(self, action))

    # -- helpers ------------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.worker is not None and self.worker.state in (WorkerState.PENDING, WorkerState.RUNNING)

    def log_activity(self, text: str) -> None:
        self.query_one("#activity", TextLog).add(text)

    def set_state(self, state: str) -> None:
        self.state = state
        self.query_one(StatusLine).set_state(state)

    # -- actions ------------------------------------------------------------------------------------
    def action_tab(self, tab: str) -> None:
        tabs = self.query_one("#tabs", TabbedContent)
        if tabs.active == tab:
            self._focus_pane(tab)  # TabActivated only fires on a change
        tabs.active = tab

    def action_leave_field(self) -> None:
        if isinstance(self.focused, Input):
            self.set_focus(None)

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_start(self, resume: str | None = None, config: RunConfig | None = None) -> None:
        if self.running:
            self.notify("A run is already going: x stops it, p pauses it.", severity="warning")
            return
        form = self.query_one(HyperparameterForm)
        if config is None:
            try:
                config = form.read()
            except ConfigError as exc:
                self.action_tab("hyper")
                self.notify("Not started: " + "; ".join(f"{k} {v}" for k, v in exc.errors.items()),
                            severity="error", timeout=8)
                return
        self.config = config
        self.running_config = config
        runner = self.runner_factory(config, self.runs_dir, resume)
        self.controls = runner.controls
        self.sink = CoalescingSink(self.post_message)
        self.query_one(LossPanel).clear_curves()
        self.query_one(StatusLine).unit = "chars" if config.task == "charlm" else "names"
        self.set_state("starting")
        self.sub_title = self._subtitle()
        self.worker = self._train(runner, self.sink)

    @work(thread=True, exclusive=True, exit_on_error=False, group="train", description="training")
    def _train(self, runner: ProcessRunner | ThreadRunner, sink: CoalescingSink) -> None:
        # runs in a worker thread: only post_message from here, never touch widgets
        try:
            summary = runner.run(sink)
        except Exception as exc:  # shown in the UI; the app keeps running
            sink.flush()
            error = str(exc) if isinstance(exc, TrainingFailed) else error_message(exc)
            self.post_message(RunEnded(None, error))
            return
        sink.flush()
        self.post_message(RunEnded(summary, None))

    def action_pause(self) -> None:
        if not self.running or self.controls is None:
            self.notify("No run to pause: s starts one.")
            return
        paused = self.controls.toggle_pause()
        self.set_state("pausing" if paused else "training")

    def action_single_step(self) -> None:
        if not self.running or self.controls is None:
            self.notify("No run: s starts one.")
            return
        if not self.controls.paused:
            self.notify("Single steps work while paused: press p first.")
            return
        self.controls.step_once()

    def action_stop(self) -> None:
        if self.running and self.controls is not None:
            self.controls.stop()
            self.set_state("stopping")

    def action_apply(self) -> None:
        form = self.query_one(HyperparameterForm)
        try:
            config = form.read()
        except ConfigError as exc:
            self.notify("Not applied: " + "; ".join(f"{k} {v}" for k, v in exc.errors.items()),
                        severity="error")
            return
        base = self.running_config if self.running else self.config
        changed = {k: v for k, v in config.to_dict().items() if getattr(base, k) != v}
        if not self.running or self.controls is None:
            self.config = config
            self.notify("Saved; they take effect when the next run starts (s).")
            return
        live = {k: v for k, v in changed.items() if k in LIVE_FIELDS}
        rest = sorted(set(changed) - LIVE_FIELDS - {"epochs", "time_budget", "device"})
        if live:
            self.controls.apply(**live)
            self.running_config = self.running_config.updated(**live)
        if rest:
            self.notify(f"{', '.join(rest)} need a new run: x to stop, then s (or r on Runs to fork).",
                        severity="warning", timeout=8)
        elif not live:
            self.notify("Nothing changed that can apply mid-run.")

    def action_sample(self) -> None:
        cfg = self.running_config if self.running else self.config
        self.push_screen(SampleScreen(cfg.temperature, cfg.top_k, cfg.sample_length), self._sample_chosen)

    def _sample_chosen(self, settings: SampleSettings | None) -> None:
        if settings is None:
            return
        if self.running and self.controls is not None and self.running_config.task == "charlm":
            self.controls.request_sample(settings.prime, settings.temperature, settings.length,
                                         settings.top_k)
            self.notify("Sampling at the next batch…")
        elif self.snapshot is not None and self.snapshot.task == "charlm":
            self._sample_offline(settings)
        else:
            self.notify("No language model yet: start a char-LM run or open one on the Runs tab.",
                        severity="warning")

    @work(thread=True, exclusive=True, group="query", exit_on_error=False)
    def _sample_offline(self, settings: SampleSettings) -> None:
        import torch

        snap = self.snapshot
        text = generate(snap.model, snap.vocab, settings.length, settings.prime, settings.temperature,
                        settings.top_k, torch.Generator().manual_seed(0))
        self.post_message(TrainerEvents((Sampled(-1, text, settings.temperature, settings.prime),)))

    def action_device(self) -> None:
        current = str(self.running_config.device if self.running else self.config.device)
        self.push_screen(DeviceScreen(available_devices(), current), self._device_chosen)

    def _device_chosen(self, device: str | None) -> None:
        if not device:
            return
        if self.running and self.controls is not None:
            self.controls.switch_device(device)
            self.notify(f"Moving to {device} at the next batch…")
        else:
            self.config = self.config.updated(device=device)
            self.query_one(HyperparameterForm).set_config(self.config)
            self.query_one(StatusLine).device = device
            self.query_one(StatusLine).refresh_text()

    def action_switch_task(self) -> None:
        if self.running:
            self.notify("Stop the run first (x).", severity="warning")
            return
        task = "names" if self.config.task == "charlm" else "charlm"
        self.config = default_config(task, data=str(default_data(task)), device=self.config.device)
        self.query_one(HyperparameterForm).set_config(self.config)
        self.sub_title = self._subtitle()
        self.log_activity(f"task: {task} on {Path(self.config.data).name}")
        self.notify(f"Task: {'name classifier' if task == 'names' else 'char language model'}; "
                    "s starts it, 3 opens the classifier pane.")

    async def action_quit(self) -> None:
        if self.running and self.controls is not None and self.worker is not None:
            self.controls.stop()
            self.set_state("saving")
            await self.worker.wait()
        self.exit()

    # -- runs tab -----------------------------------------------------------------------------------
    def _selected_run(self) -> Path | None:
        table = self.query_one(RunsList)
        if table.row_count == 0:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        return Path(str(key.value))

    @on(DataTable.RowSelected, "#runs-table")
    def _open_run(self, event: DataTable.RowSelected) -> None:
        if self.running:
            self.notify("Stop the current run before opening another.", severity="warning")
            return
        path = Path(str(event.row_key.value))
        events_file = path / "events.jsonl"
        loss = self.query_one(LossPanel)
        loss.clear_curves()
        samples = self.query_one(SampleLog)
        steps: list[tuple[int, float]] = []
        try:
            for line in events_file.read_text(encoding="utf-8").splitlines():
                rec = json.loads(line)
                kind = rec.get("event")
                if kind == "StepFinished" and isinstance(rec["loss"], float):
                    steps.append((rec["step"], rec["loss"]))
                elif kind == "EpochFinished" and isinstance(rec["val_loss"], float):
                    loss.add_val(rec["step"], rec["val_loss"])
                    if rec.get("sample"):
                        samples.add_sample(f"{path.name} · epoch {rec['epoch']} · T={rec['temperature']}",
                                           rec["sample"])
        except (OSError, ValueError) as exc:
            self.notify(f"{events_file}: cannot be read ({exc})", severity="error")
            return
        loss.add_steps(steps)
        loss.redraw(force_plot=True)
        self._load_snapshot(path)
        self.action_tab("train")
        self.log_activity(f"opened {path.name}: {len(steps)} steps")

    def _load_snapshot(self, path: Path) -> None:
        last = path / "last.pt"
        if not last.exists():
            return
        try:
            ck = ckpt_io.load(last)
            self.snapshot = Snapshot(ck.build_model(), ck.vocab, ck.labels, ck.config.task)
        except ckpt_io.CheckpointError as exc:
            self.notify(str(exc), severity="error")

    def action_resume_run(self) -> None:
        if self.query_one("#tabs", TabbedContent).active != "runs":
            return
        path = self._selected_run()
        if path is None or not (path / "last.pt").exists():
            self.notify("No checkpoint in the selected run.", severity="warning")
            return
        try:
            ck = ckpt_io.load(path / "last.pt")
        except ckpt_io.CheckpointError as exc:
            self.notify(str(exc), severity="error")
            return
        form_cfg = self.query_one(HyperparameterForm)
        try:
            current = form_cfg.read()
        except ConfigError:
            current = self.config
        # the architecture and data come from the checkpoint; budget and live settings from the form
        budget = {k: getattr(current, k) for k in ("epochs", "time_budget", "device", *LIVE_FIELDS)}
        config = ck.config.updated(**budget)
        form_cfg.set_config(config)
        self.action_tab("train")
        self.action_start(resume=str(path / "last.pt"), config=config)

    @on(TabbedContent.TabActivated)
    def _tab_shown(self, event: TabbedContent.TabActivated) -> None:
        self._focus_pane(event.pane.id)

    def _focus_pane(self, pane: str | None) -> None:
        # land in the pane's first field, so typing goes where the eye is
        if pane == "hyper":
            self.query_one(HyperparameterForm).focus_first()
        elif pane == "classify":
            self.query_one("#clf-input", Input).focus()
        elif pane == "runs":
            self.query_one(RunsList).focus()
        else:
            self.set_focus(None)

    # -- classifier ---------------------------------------------------------------------------------
    @on(Input.Changed, "#clf-input")
    def _query_name(self, event: Input.Changed) -> None:
        name = event.value.strip()
        pane = self.query_one(ClassifierQuery)
        if not name:
            return
        if self.running and self.controls is not None and self.running_config.task == "names":
            self.controls.request_classify([name], top_k=5)
        elif self.snapshot is not None and self.snapshot.task == "names":
            snap = self.snapshot
            pane.show_results(name, classify(snap.model, snap.vocab, snap.labels, [name], 5)[0])
        else:
            pane.show_message("no classifier yet: press t for the name task, then s to train "
                              "(or open a names run on the Runs tab)")

    # -- events from the worker ---------------------------------------------------------------------
    def on_trainer_events(self, message: TrainerEvents) -> None:
        loss = self.query_one(LossPanel)
        status = self.query_one(StatusLine)
        grads = self.query_one(GradientPanel)
        steps: list[tuple[int, float]] = []
        last_step: StepFinished | None = None
        for e in message.events:
            if isinstance(e, StepFinished):
                steps.append((e.step, e.loss))
                last_step = e
            else:
                self._handle_event(e)
        if steps:
            loss.add_steps(steps)
            status.show_step(last_step)
            grads.show_step(last_step)
            if self.state in ("starting", "paused") and not (self.controls and self.controls.paused):
                self.set_state("training")
        loss.redraw()

    def _handle_event(self, e: Event) -> None:
        if isinstance(e, RunStarted):
            self.query_one(StatusLine).device = e.device
            self.set_state("training")
            resumed = f", resumed at step {e.resumed_from_step}" if e.resumed_from_step else ""
            self.log_activity(f"[b]run {e.run_id}[/] on {e.device}: {e.parameters:,} parameters, "
                              f"{e.train_items:,} training items{resumed}")
            if e.recurrent_path:
                self.log_activity(f"recurrence: {e.recurrent_path}")
        elif isinstance(e, (Evaluated, EpochFinished)):
            self.query_one(LossPanel).add_val(e.step, e.val_loss)
            if isinstance(e, EpochFinished):
                acc = f", accuracy {e.val_accuracy:.1%}" if e.val_accuracy is not None else ""
                self.log_activity(f"epoch {e.epoch}: train {e.train_loss:.4f}, val {e.val_loss:.4f}{acc}")
                if e.sample:
                    self.query_one(SampleLog).add_sample(
                        f"epoch {e.epoch} · step {e.step} · T={e.temperature}", e.sample)
                if e.confusion:
                    self.query_one(ClassifierQuery).show_confusion(e.labels, e.confusion, e.epoch)
        elif isinstance(e, GradientsMeasured):
            self.query_one(GradientPanel).show_measurement(e)
        elif isinstance(e, RunPaused):
            self.set_state("paused")
            self.log_activity(f"[yellow]paused at step {e.step}[/]: {e.reason}")
            if e.reason != "paused by user":
                self.notify(e.reason, severity="error", timeout=10)
        elif isinstance(e, RunResumed):
            self.set_state("training")
            self.log_activity(f"resumed at step {e.step}")
        elif isinstance(e, HyperparametersApplied):
            changes = ", ".join(f"{k} → {v}" for k, v in e.changes.items())
            self.log_activity(f"step {e.step}: applied {changes}")
        elif isinstance(e, HyperparametersRejected):
            rejected = "; ".join(f"{k} {v}" for k, v in e.errors.items())
            self.log_activity(f"[yellow]step {e.step}: not applied: {rejected}[/]")
            self.notify(f"Not applied: {rejected}", severity="error")
        elif isinstance(e, DeviceSwitched):
            self.query_one(StatusLine).device = e.device
            self.log_activity(f"step {e.step}: now on {e.device}")
        elif isinstance(e, CheckpointSaved):
            self.log_activity(f"[dim]step {e.step}: checkpoint ({e.reason}) {e.path}[/]")
        elif isinstance(e, Sampled):
            where = f"step {e.step}" if e.step >= 0 else "saved model"
            prime = f" · prime {e.prime!r}" if e.prime else ""
            self.query_one(SampleLog).add_sample(f"sample · {where} · T={e.temperature}{prime}", e.text)
            self.action_tab("train")
        elif isinstance(e, Classified):
            current = self.query_one("#clf-input", Input).value.strip()
            if e.names and e.names[0] == current:
                self.query_one(ClassifierQuery).show_results(current, [tuple(r) for r in e.results[0]])
        elif isinstance(e, RunFailed):
            self.log_activity(f"[red]step {e.step}: failed: {e.error}[/]")
        elif isinstance(e, RunFinished):
            s = e.summary
            metric = (f"val loss {s['val_loss']:.4f}, {s['chars_per_s']:,.0f} chars/s" if "val_loss" in s
                      else f"test accuracy {s['test_accuracy']:.1%}, {s['names_per_s']:,.0f} names/s")
            self.log_activity(f"[b]run {e.reason}[/] at step {e.step}: {metric}")

    def on_run_ended(self, message: RunEnded) -> None:
        if message.error:
            self.set_state("failed")
            self.log_activity(f"[red]{message.error}[/]")
            self.notify(message.error, severity="error", timeout=12)
        else:
            self.set_state("finished")
            # the finished model, for sampling and classifying until the next run
            self._load_snapshot(Path(message.summary["run_dir"]))
        self.query_one(RunsList).reload(self.runs_dir)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group == "train" and event.state == WorkerState.ERROR:
            self.set_state("failed")
            self.notify(f"training stopped: {event.worker.error}", severity="error")


def make_app(config: RunConfig | None = None, runs_dir: Path | str = "runs",
             runner_factory: RunnerFactory = ProcessRunner) -> WorkbenchApp:
    """The app for a config (defaults: char LM on the bundled corpus).

    Training runs in a child process by default; tests pass ThreadRunner to drive a small real
    model without the start-up cost of a process.
    """
    config = config or default_config("charlm", data=str(default_data("charlm")))
    return WorkbenchApp(config, runs_dir, runner_factory)
