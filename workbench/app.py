"""The Textual app: a viewer and remote control over runs, keyboard first.

A run is a process of its own. The app starts one (`s`, `r`) as `workbench train` in a session
of its own, or attaches to any run directory (`workbench attach`, Enter on the Runs tab), and
from then on knows the run only through its directory and its control endpoint: it replays and
follows events.jsonl, reads live.json for the run's state and resources, and sends commands.
Quitting the app, or losing its terminal, costs the run nothing.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import events, on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.containers import ScrollableContainer, Vertical
from textual.widgets import DataTable, Footer, Header, Input, TabbedContent, TabPane
from textual.worker import get_current_worker

from rnn_engine.analysis.check import describe_check
from rnn_engine.config import LIVE_FIELDS, MAX_INSPECT, ConfigError, RunConfig, default_config
from rnn_engine.control.client import RunUnavailable
from rnn_engine.events import (
    Checked,
    Classified,
    DeviceSwitched,
    EpochFinished,
    Evaluated,
    EvaluationProgress,
    Event,
    GradientsMeasured,
    HyperparametersApplied,
    Inspected,
    RunFinished,
    RunPaused,
    RunResumed,
    RunStarted,
    Sampled,
    event_from_dict,
    final_state,
)
from rnn_engine.rundir.launch import command_line, start_run, sweep_argv, training_argv
from rnn_engine.rundir.layout import RunDir, RunDirError
from rnn_engine.rundir.liveness import endpoint_note, stop_hint
from rnn_engine.rundir.runs import describe_resources, new_run_id, run_info, run_name, scan_runs

from .actions import APP, bindings
from .curves import ChartSettings
from .event_text import describe
from .live_apply import live_changes, names_with_and
from .messages import (
    CheckReported,
    DevicesListed,
    EngineNoted,
    InsideFailed,
    InsideTextRead,
    InspectionMade,
    RunEnded,
    RunEvents,
    RunReplied,
    RunsScanned,
    RunStatus,
    SavedModelClassified,
    SavedModelSampled,
    WorkFailed,
)
from .notices import RunWatch
from .paths import default_data
from .run_view import RunView
from .saved_model import ENGINE_LOGGER, EngineLog, SavedModels
from .screens.compare import CompareScreen
from .screens.device import DeviceScreen
from .screens.help import HelpScreen
from .screens.quit import QuitScreen
from .screens.sample import SampleScreen, SampleSettings
from .screens.sweep import SweepScreen
from .screens.sweep_start import SweepPicker, SweepStartScreen
from .widgets.classifier_query import ClassifierQuery
from .widgets.grad_panel import GradientPanel
from .widgets.hyper_form import HyperparameterForm
from .widgets.inside_view import InsideView
from .widgets.latest_strip import LatestStrip
from .widgets.loss_panel import LossChart, LossPanel
from .widgets.runs_list import RunsList
from .widgets.sample_log import SampleLog
from .widgets.status_line import StatusLine
from .widgets.text_log import TextLog

COMPACT_WIDTH, COMPACT_HEIGHT = 120, 36  # below either, the Train tab is one scrolling column
SCAN_EVERY = 2.0  # seconds between reads of the runs directory
# Seconds between the redraws that new steps cause: the status line's numbers, then the panes
# below. On a slow core a redraw of the panes costs ~15 ms of CPU, and on a two-core machine a
# viewer takes what it uses from the run it watches.
REDRAW_EVERY = 1.0
PANES_EVERY = 2.0


class WorkbenchApp(App[None]):
    """Start, watch and steer recurrent-network runs from the terminal."""

    CSS_PATH = "workbench.tcss"
    TITLE = "RNN Workbench"

    BINDINGS = bindings(APP)  # actions.py: the one table of keys

    def __init__(self, config: RunConfig, runs_dir: Path | str = "runs", attach: Path | None = None,
                 bell: bool = True) -> None:
        super().__init__()
        self.bell_on = bell  # ring the terminal bell with each notice of a run that needs its user
        self._watch = RunWatch(since=time.time())
        self.config = config
        self.runs_dir = Path(runs_dir)
        self.view: RunView | None = None
        self.state = "idle"
        self.farewell = ""  # printed after the app closes (a run left training)
        self._attach_first = attach
        self._pending: dict[int, str] = {}  # request id -> what the reply is for
        self._paused_wanted = False
        self._endpoint_note = ""  # what the shown run's live.json says of a failed control endpoint
        self._quit_when_ended = False
        self._children: list[Any] = []  # processes this app started, reaped as they end
        self._loss: LossPanel | None = None
        self._last_step: Any = None  # the newest StepFinished, drawn at the next redraw
        self._drawn = 0.0  # when the status line was last redrawn for new steps
        self._panes_drawn = 0.0  # and the loss and gradient panes
        self._draw_pending = False
        self._engine_log: logging.Handler | None = None
        self._saved = SavedModels()  # ended runs' models, opened to sample, classify, inspect, check
        self.chart = ChartSettings()  # the loss charts' smoothing and scale, for the whole session
        self._latest_sample = ""  # the newest generated text, for the Inside tab
        self._inside_stale = True  # the Inside tab's text changed since it was last inspected

    # -- layout -------------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Header()
        yield StatusLine(id="status")
        with TabbedContent(initial="train", id="tabs"):
            with TabPane("Train [1]", id="train"):
                # side by side on a large terminal; one scrolling column on a small one (.-compact)
                with ScrollableContainer(id="train-panes"):
                    with Vertical(id="train-left"):
                        yield LossPanel(self.chart, between=LatestStrip(id="latest"), id="loss")
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
            with TabPane("Inside [5]", id="inside"):
                yield InsideView(id="inside-view")
        yield Footer()

    def on_mount(self) -> None:
        self._engine_log = EngineLog(lambda text: self.post_message(EngineNoted(text)))
        engine = logging.getLogger(ENGINE_LOGGER)
        engine.addHandler(self._engine_log)
        engine.setLevel(logging.INFO)
        self._loss = self.query_one(LossPanel)
        self.query_one("#activity", TextLog).border_title = "activity"
        self._show_task()
        self._scan_runs()
        self.set_interval(SCAN_EVERY, self._scan_runs)
        if self._attach_first is not None:
            self.attach(self._attach_first)
        else:
            self.log_activity(f"data: {Path(self.config.data).name or '(none)'}")

    def on_resize(self, event: events.Resize) -> None:
        # an 80×24 SSH terminal gets one scrolling column, the newest sample and ‖g‖ at the top
        compact = event.size.width < COMPACT_WIDTH or event.size.height < COMPACT_HEIGHT
        self.set_class(compact, "-compact")
        footer = self.query_one(Footer)
        footer.compact = compact
        # the palette's docked label covered the end of a footer wider than 80 columns ("palettea");
        # ctrl+p still opens it, and ? lists every key
        footer.show_command_palette = not compact

    @property
    def shown_config(self) -> RunConfig:
        """The settings of the run shown, else the form's starting ones."""
        return self.view.config if self.view is not None and self.view.config else self.config

    def _show_task(self) -> None:
        """The header and the samples pane say which task is shown."""
        self.sub_title = self._subtitle()
        cfg = self.shown_config
        self.query_one(SampleLog).border_title = "generated text" if cfg.task == "charlm" else \
            "held-out names: the model's guesses"

    def _subtitle(self) -> str:
        cfg = self.shown_config
        task = "char language model" if cfg.task == "charlm" else "name classifier"
        run = f" · run {self.view.run_id}" if self.view is not None else ""
        return f"{task} · {Path(cfg.data).name or 'no data'}{run}"

    def get_system_commands(self, screen) -> Iterable[SystemCommand]:
        """The command palette (Ctrl+P) lists every action with its key."""
        yield from super().get_system_commands(screen)
        for a in APP:
            if a.palette:
                yield SystemCommand(f"{a.name} ({a.shown_keys.split(' / ')[0]})", a.help,
                                    getattr(self, f"action_{a.id}"))

    # -- helpers ------------------------------------------------------------------------------------
    @property
    def live(self) -> bool:
        return self.view is not None and self.view.live

    def log_activity(self, *entries: str | Text) -> None:
        self.query_one("#activity", TextLog).add(*entries)

    def set_state(self, state: str) -> None:
        self.state = state
        self.query_one(StatusLine).set_state(state)
        self.query_one(ClassifierQuery).prompt(self._classifier_hint())

    def _classifier_hint(self) -> str:
        """What the Classifier tab says while its box is empty: which model would answer, if any."""
        view = self.view
        if view is None or view.config is None:
            return ("no model yet: train the name classifier (t switches task, s starts) or open a names "
                    "run on the Runs tab (4)")
        if view.task != "names":
            return (f"run {view.run_id} is a language model: t switches to the name task for the next run, "
                    "or open a names run on the Runs tab (4)")
        if view.live:
            return f"run {view.run_id} is {self.state}: type a surname above and the model as it is now " \
                "answers"
        return f"run {view.run_id} ({self.state}): type a surname above and its saved model answers"

    def _current(self, run_dir: Path) -> bool:
        return self.view is not None and self.view.run_dir == run_dir and not self._widgets_gone()

    def _widgets_gone(self) -> bool:
        # workers can post after the app began to close; the screens are then taken down one widget
        # at a time while queued messages are still handled, so no single widget tells it
        return not self.is_running or self._loss is None or not self._loss.is_attached

    def _steerable(self) -> bool:
        """True when the shown run is live; otherwise says why nothing can be sent to it."""
        view = self.view
        if view is None:
            self.notify("No run: s starts one, or Enter on the Runs tab (4) attaches one.")
            return False
        if not view.live:
            self.notify(f"Run {view.run_id} is {view.state}: it takes no commands. r resumes or forks it.",
                        severity="warning")
            return False
        if view.state == "starting":
            self.notify(f"Run {view.run_id} is still starting (loading data, building kernels); "
                        "its commands work once it trains.")
            return False
        return True

    def _send(self, cmd: str, args: dict[str, Any] | None = None, purpose: str = "") -> bool:
        """Send a command to the shown run; says why not when it cannot go."""
        view = self.view
        if not self._steerable():
            return False
        try:
            rid = view.connect(self.post_message).send(cmd, args)
        except RunUnavailable as exc:
            view.client = None
            self.notify(f"{cmd}: {exc}", severity="error")
            return False
        if purpose:
            self._pending[rid] = purpose
        return True

    # -- attaching ----------------------------------------------------------------------------------
    def attach(self, run_dir: Path, process: Any = None) -> None:
        """Show a run: replay its history, then follow it while it lives."""
        if self.view is not None:
            self.view.close()
        view = RunView(Path(run_dir), process)
        view.read_config()
        self.view = view
        self._paused_wanted = False
        self._endpoint_note = ""
        self._last_step = None
        self.query_one(LossPanel).clear_curves()
        self.query_one(SampleLog).clear()
        self.query_one(GradientPanel).clear()
        self.query_one(LatestStrip).clear()
        self.query_one(ClassifierQuery).clear()
        self.query_one(InsideView).clear()
        self._latest_sample = ""
        self._inside_stale = True
        status = self.query_one(StatusLine)
        status.reset(view.run_id, _unit(view.task))
        self.set_state("starting" if process is not None else "attaching")
        if view.config is not None:
            self.query_one(HyperparameterForm).set_config(view.config)
            status.device = view.config.device
        self._show_task()
        self.log_activity(f"[b]{'started' if process is not None else 'attached to'} run {view.run_id}[/]")
        self._follow(view)

    @work(thread=True, exclusive=True, exit_on_error=False, group="follow", description="follow run")
    def _follow(self, view: RunView) -> None:
        # a worker thread: it only posts messages, and ends when the app cancels its workers on exit
        worker = get_current_worker()
        view.follow(self.post_message, lambda: worker.is_cancelled)

    def on_unmount(self) -> None:
        logging.getLogger(ENGINE_LOGGER).removeHandler(self._engine_log)
        if self.view is not None:
            self.view.close()

    @work(thread=True, exclusive=True, exit_on_error=False, group="scan", description="scan runs")
    def _scan_runs(self) -> None:
        for child in list(self._children):
            if child.poll() is not None:  # reap the processes this app started once they end
                self._children.remove(child)
        from rnn_engine.sweep.listing import scan_sweeps

        self.post_message(RunsScanned(scan_runs(self.runs_dir), scan_sweeps(self.runs_dir)))

    def on_runs_scanned(self, message: RunsScanned) -> None:
        if self._widgets_gone():
            return
        self.query_one(RunsList).show(message.runs)
        watched = list(message.runs)
        view = self.view
        if view is not None and all(Path(r.path).resolve() != view.run_dir.resolve() for r in watched):
            shown = run_info(view.run_dir)  # a run attached from another directory is watched too
            if shown is not None:
                watched.append(shown)
        for notice in self._watch.look(watched) + self._watch.look_at_sweeps(message.sweeps):
            self.notify(notice.message, severity=notice.severity, timeout=12)
            self.log_activity(f"[{'red' if notice.severity == 'error' else 'b'}]{notice.message}[/]")
            if self.bell_on:
                self.bell()

    # -- actions ------------------------------------------------------------------------------------
    def action_tab(self, tab: str) -> None:
        tabs = self.query_one("#tabs", TabbedContent)
        if tabs.active == tab:
            self._focus_pane(tab)  # TabActivated only fires on a change
        tabs.active = tab

    # -- sweeps ---------------------------------------------------------------------------------------
    def action_open_sweep(self) -> None:
        from rnn_engine.sweep.listing import scan_sweeps

        sweeps = scan_sweeps(self.runs_dir)
        if not sweeps:
            self.notify("No sweeps here yet: on the Hyperparameters tab (2), W shows a sweep column; write "
                        "ranges there (1e-4..1e-2 log, gru | lstm) and W again starts one.", timeout=10)
        elif len(sweeps) == 1:
            self._show_sweep(sweeps[0])
        else:
            self.push_screen(SweepPicker(sweeps), lambda chosen: chosen and self._show_sweep(chosen))

    def _show_sweep(self, sweep: Any) -> None:
        self.push_screen(SweepScreen(sweep), self._trial_chosen)

    def _trial_chosen(self, run_dir: Path | None) -> None:
        if run_dir is not None:
            self.attach(run_dir)
            self.action_tab("train")

    def action_start_sweep(self) -> None:
        form = self.query_one(HyperparameterForm)
        if not form.sweeping:
            form.set_sweeping(True)
            self.action_tab("hyper")
            self.notify("Write what to sweep beside each setting (1e-4..1e-2 log, 64..512 step 64, "
                        "gru | lstm), then W starts the sweep.", timeout=10)
            return
        try:
            base = form.read()
            space = form.read_space(base)
        except ConfigError as exc:
            self.notify("Not started: " + "; ".join(f"{k} {v}" for k, v in exc.errors.items()),
                        severity="error")
            return
        if not space.dimensions:
            self.notify("Nothing to sweep yet: write a range or choices beside a setting.",
                        severity="warning")
            return
        names = ", ".join(d.name for d in space.dimensions)
        self.push_screen(SweepStartScreen(names), lambda plan: plan and self._launch_sweep(base, space, plan))

    def _launch_sweep(self, base: RunConfig, space: Any, plan: Any) -> None:
        from rnn_engine.sweep.listing import SweepInfo
        from rnn_engine.sweep.study import default_storage, sweep_dir

        directory = sweep_dir(self.runs_dir, plan.study)
        try:
            directory.mkdir(parents=True, exist_ok=True)
            (directory / "space.toml").write_text(space.to_toml(), encoding="utf-8")
        except OSError as exc:
            self.notify(f"Not started: {directory}: {exc.strerror or exc}", severity="error")
            return
        argv = sweep_argv(base, directory / "space.toml", self.runs_dir, plan.study, plan.trials,
                          plan.parallel, plan.pruner)
        self._children.append(start_run(argv, directory))
        self.log_activity(f"sweep {plan.study}: {command_line(argv)}")
        self.notify(f"Sweep {plan.study} starting: {plan.trials} trials, {plan.parallel} at a time.")
        metric = "accuracy" if base.task == "names" else "val_loss"
        starting = SweepInfo(plan.study, directory, default_storage(self.runs_dir, plan.study), metric,
                             "starting", None, time.time(), {"trials": plan.trials})
        self._show_sweep(starting)

    def action_smoothing(self, direction: int) -> None:
        self.chart.step_smoothing(direction)
        self._chart_changed()

    def action_log_scale(self) -> None:
        self.chart.log_scale = not self.chart.log_scale
        self._chart_changed()

    def _chart_changed(self) -> None:
        self.query_one("#loss-plot", LossChart).redraw()
        self.notify(f"Loss charts: {self.chart.describe()}", timeout=3)

    def action_enter_field(self) -> None:
        """Enter that no focused widget takes moves into the tab's text field."""
        tab = self.query_one("#tabs", TabbedContent).active
        if tab == "classify":
            self.query_one("#clf-input", Input).focus()
        elif tab == "hyper":
            self.query_one(HyperparameterForm).focus_first()

    def action_leave_field(self) -> None:
        if isinstance(self.focused, Input):
            inside = self.query_one(InsideView)
            self.set_focus(inside if self.focused.id == "inside-input" else None)

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_start(self, resume: Path | None = None, config: RunConfig | None = None,
                     given: tuple[str, ...] | None = None) -> None:
        if self.live:
            self.notify(f"Run {self.view.run_id} is live: x stops it, p pauses it; or open another "
                        "run on the Runs tab first.", severity="warning")
            return
        if config is None:
            try:
                config = self.query_one(HyperparameterForm).read()
            except ConfigError as exc:
                self.action_tab("hyper")
                self.notify("Not started: " + "; ".join(f"{k} {v}" for k, v in exc.errors.items()),
                            severity="error", timeout=8)
                return
        self.config = config
        run_id = new_run_id(config)
        argv = training_argv(config, self.runs_dir, run_id, str(resume) if resume else None, given)
        try:
            process = start_run(argv, self.runs_dir / run_id)
        except OSError as exc:
            self.notify(f"Not started: {self.runs_dir}: {exc.strerror or exc}", severity="error")
            return
        self._children.append(process)
        self.action_tab("train")
        self.attach(self.runs_dir / run_id, process)
        self.log_activity(Text("same as: " + command_line(argv), style="dim"))

    def action_pause(self) -> None:
        if not self._steerable():
            return
        want = not self._paused_wanted
        if self._send("pause" if want else "resume"):
            self._paused_wanted = want
            self.set_state("pausing" if want else "resuming")

    def action_single_step(self) -> None:
        if not self._steerable():
            return
        if not self._paused_wanted:
            self.notify("Single steps work while paused: press p first.")
        else:
            self._send("step")

    def action_stop(self) -> None:
        if self._send("stop"):
            self.set_state("stopping")

    def action_evaluate_full(self) -> None:
        if self._send("evaluate", {"full": True}):
            self.notify("Evaluating on the whole validation split at the next batch; the status line "
                        "shows how far it has got.")

    def action_apply(self) -> None:
        form = self.query_one(HyperparameterForm)
        if not self.live or self.view.config is None:
            try:
                self.config = form.read()
            except ConfigError as exc:
                self.notify("Not saved: " + "; ".join(f"{k} {v}" for k, v in exc.errors.items()),
                            severity="error")
                return
            self.notify("Saved; they take effect when the next run starts (s).")
            return
        live, rest, errors = live_changes(form.values(), self.view.config)
        form.show_errors(errors)
        bad_live = {k: v for k, v in errors.items() if k in LIVE_FIELDS}
        if bad_live:  # what would apply is wrong: say so and send nothing
            self.notify("Not applied: " + "; ".join(f"{k} {v}" for k, v in bad_live.items()),
                        severity="error")
            return
        if live:
            self._send("apply", {"changes": live}, purpose="apply")
        if rest:
            verb = "needs" if len(rest) == 1 else "need"
            sent = f"Sent {', '.join(live)}; " if live else "Nothing sent: "
            self.notify(f"{sent}{names_with_and(rest)} {verb} a new run (x stops this one, then s; or r "
                        "forks it).", severity="warning", timeout=8)
        elif not live:
            self.notify("Nothing changed that can apply mid-run.")

    def action_sample(self) -> None:
        cfg = self.shown_config
        self.push_screen(SampleScreen(cfg.temperature, cfg.top_k, cfg.sample_length or 300),
                         self._sample_chosen)

    def _sample_chosen(self, settings: SampleSettings | None) -> None:
        if settings is None:
            return
        view = self.view
        if view is None or view.task != "charlm":
            self.notify("No language model shown: start a char-LM run (s) or attach one (Runs tab).",
                        severity="warning")
        elif view.live:
            args = {"prime": settings.prime, "temperature": settings.temperature,
                    "length": settings.length, "top_k": settings.top_k}
            if self._send("sample", args):
                self.notify("Sampling at the next batch…")
        else:
            self._sample_saved(view.run_dir, settings)

    def action_check(self) -> None:
        view = self.view
        if view is None:
            self.notify("No model: s starts a run, or Enter on the Runs tab (4) opens one; then k.")
        elif view.live:
            if self._send("check"):
                self.notify("Comparing with torch.nn at the next batch…")
        elif RunDir(view.run_dir).last.exists():
            self._check_saved(view.run_dir)
        else:
            self.notify(f"Run {view.run_id} has no saved model to check.", severity="warning")

    @work(thread=True, exclusive=True, exit_on_error=False, group="check")
    def _check_saved(self, run_dir: Path) -> None:
        self.post_message(CheckReported(self._saved.check(run_dir)))

    def _show_check(self, report: dict[str, Any], log: bool) -> None:
        line = describe_check(report)
        if log:
            self.log_activity(line)
        self.notify(line, severity="error" if "error" in report else "information", timeout=10)

    def action_device(self) -> None:
        if self.live and self.view.world_size > 1:
            self.notify(f"A job of {self.view.world_size} ranks stays on its devices: stop it (x), then "
                        "resume it on others (r, or workbench train --resume).", severity="warning")
            return
        if self.live:
            self._send("devices", purpose="devices")
        else:
            self._local_devices()

    @work(thread=True, exclusive=True, exit_on_error=False, group="devices")
    def _local_devices(self) -> None:
        from rnn_engine.training.devices import available_devices

        self.post_message(DevicesListed(available_devices()))

    def _show_devices(self, devices: dict[str, str]) -> None:
        # a live run's own device (from its events), else the setting for the next run
        current = self._run_device() if self.live else str(self.config.device)
        self.push_screen(DeviceScreen(devices, current), self._device_chosen)

    def _run_device(self) -> str:
        return self.query_one(StatusLine).device.split(" ")[0]

    def _device_chosen(self, device: str | None) -> None:
        if not device:
            return
        if self.live:
            if device == self._run_device():
                self.notify(f"The run is on {device} already.")
                return
            if self._send("device", {"name": device}, purpose="device"):
                self.notify(f"Moving to {device} at the next batch…")
        else:
            self.config = self.config.updated(device=device)
            self.query_one(HyperparameterForm).set_config(self.config)
            status = self.query_one(StatusLine)
            status.device = device
            status.refresh_text()

    def action_switch_task(self) -> None:
        if self.live:
            self.notify("The run shown is live: stop it first (x), or leave it and start another.",
                        severity="warning")
            return
        task = "names" if self.config.task == "charlm" else "charlm"
        self.config = default_config(task, data=str(default_data(task)), device=self.config.device)
        self.query_one(HyperparameterForm).set_config(self.config)
        self.log_activity(f"task: {task} on {Path(self.config.data).name}")
        self.notify(f"Task: {'name classifier' if task == 'names' else 'char language model'}; "
                    "s starts it, 3 opens the classifier pane.")

    def action_resume_run(self) -> None:
        on_runs = self.query_one("#tabs", TabbedContent).active == "runs"
        path = self.query_one(RunsList).selected() if on_runs else (
            self.view.run_dir if self.view is not None and not self.view.live else None)
        if path is None:
            self.notify("Choose a run on the Runs tab (4), or attach a finished one, then r.")
            return
        files = RunDir(path)
        if not files.last.exists():
            self.notify(f"{path.name} has no checkpoint to resume from.", severity="warning")
            return
        try:
            saved = files.settings()
        except RunDirError as exc:
            self.notify(str(exc), severity="error")
            return
        try:
            current = self.query_one(HyperparameterForm).read()
        except ConfigError:
            current = self.config
        # the run goes on with the settings it had when it stopped (live changes included, from its
        # checkpoint) and its data; only the budget and the device come from the form
        budget = {k: getattr(current, k) for k in ("epochs", "time_budget", "max_steps", "device")}
        self.action_start(resume=files.last, config=saved.updated(**budget), given=tuple(budget))

    async def action_quit(self) -> None:
        view = self.view
        if view is None or not view.live:
            self.exit()
            return
        self.push_screen(QuitScreen(view.run_id, view.process is not None, run_name(view.run_dir)),
                         self._quit_chosen)

    def _quit_chosen(self, choice: str | None) -> None:
        view = self.view
        if choice is None or view is None:
            return
        if choice == "leave" or not view.live:
            if view.live:
                self.farewell = (f"run {view.run_id} is still training; follow it again with: "
                                 f"workbench attach {run_name(view.run_dir)}")
            self.exit()
        elif view.state == "starting" and view.process is not None:
            view.process.terminate()  # it has not trained yet: there is nothing to save
            self.exit()
        elif self._send("stop"):
            self._quit_when_ended = True
            self.set_state("saving")
            self.notify("Stopping at the next batch and saving; the workbench closes when it has.")
        else:
            self.farewell = (f"run {view.run_id} could not be reached to stop it and may still be "
                             f"training; see workbench runs, or workbench ctl {run_name(view.run_dir)} stop")
            self.exit()

    # -- runs tab -----------------------------------------------------------------------------------
    @on(DataTable.RowSelected, "#runs-table")
    def _open_run(self, event: DataTable.RowSelected) -> None:
        path = Path(str(event.row_key.value))
        if self.view is not None and self.view.run_dir == path:
            self.action_tab("train")
            return
        if self.live:
            self.notify(f"Run {self.view.run_id} goes on training; the Runs tab lists it.")
        self.action_tab("train")
        self.attach(path)

    @on(RunsList.CompareRequested)
    def _compare(self, message: RunsList.CompareRequested) -> None:
        self.push_screen(CompareScreen(message.runs, self.chart))

    @on(TabbedContent.TabActivated)
    def _tab_shown(self, event: TabbedContent.TabActivated) -> None:
        self._focus_pane(event.pane.id)

    def _focus_pane(self, pane: str | None) -> None:
        # land in the pane's first field, so typing goes where the eye is
        if pane == "hyper":
            self.query_one(HyperparameterForm).focus_first()
        elif pane == "classify":
            # the pane, not the surname box: digits and the app's keys keep working until the user
            # moves in, and the arrows scroll down to the confusion matrix
            self.query_one(ClassifierQuery).focus()
        elif pane == "runs":
            self.query_one(RunsList).focus()
        elif pane == "inside":
            self.query_one(InsideView).focus()
            if self._inside_stale:
                self._inside_stale = False
                self.query_one(InsideView).request()
        else:  # Train: its panes scroll (PgDn, arrows) when they are one column
            self.query_one("#train-panes").focus()

    # -- classifier ---------------------------------------------------------------------------------
    @on(Input.Changed, "#clf-input")
    def _query_name(self, event: Input.Changed) -> None:
        name = event.value.strip()
        pane = self.query_one(ClassifierQuery)
        view = self.view
        if not name or view is None or view.task != "names":
            pane.show_message(self._classifier_hint())  # an emptied box: no stale answer stays
        elif view.live:
            self._send("classify", {"names": [name], "top_k": 5})
        else:
            self._classify_saved(view.run_dir, name)

    # -- inside -------------------------------------------------------------------------------------
    def _sample_for_inside(self) -> None:
        """A new sample: the Inside tab reads it now if it shows samples and is open, else when opened."""
        inside = self.query_one(InsideView)
        if inside.source != "sample":
            return
        if self.query_one("#tabs", TabbedContent).active == "inside":
            inside.request()
        else:
            self._inside_stale = True

    @on(InsideView.Wanted)
    def _inside_wanted(self, message: InsideView.Wanted) -> None:
        inside = self.query_one(InsideView)
        view = self.view
        if view is None:
            inside.show_message("no model yet: start a run (s) or open one on the Runs tab (4)")
            return
        if view.task == "names":
            if message.source != "typed" or not message.text.strip():
                inside.show_message("A name classifier: press e, type a name and press Enter to see, letter "
                                    "by letter, how its top-3 languages change as the network reads it.")
            else:
                self._inspect(message.text.strip(), message.units)
        elif message.source == "typed":
            if message.text.strip():
                self._inspect(message.text, message.units)
            else:
                inside.show_message("Press e, type a text and press Enter; c goes back to the samples.")
        elif message.source == "sample":
            if self._latest_sample:
                self._inspect(self._latest_sample, message.units)
            else:
                inside.show_message("no sample yet: one comes with each evaluation, or g generates one "
                                    "now; c reads a validation excerpt instead")
        elif view.config is not None:
            self._validation_text(Path(view.config.data), message.units)

    def _inspect(self, text: str, units: list[tuple[int, int]]) -> None:
        """Inspect `text` where the model is: in the live run, else on its saved checkpoint."""
        view = self.view
        if view is None:
            return
        if view.live:
            if view.state == "starting":
                self.query_one(InsideView).show_message("the run is still starting; this tab reads its model "
                                                        "once it trains")
            else:
                self._send("inspect", {"text": text[-MAX_INSPECT:], "units": [list(u) for u in units]})
        elif RunDir(view.run_dir).last.exists():
            self._inspect_saved(view.run_dir, text, units)
        else:
            self.query_one(InsideView).show_message(f"run {view.run_id} has no saved model to read")

    # -- answers from saved models, in worker threads (saved_model) ---------------------------------
    @work(thread=True, exclusive=True, exit_on_error=False, group="inside-text")
    def _validation_text(self, path: Path, units: list[tuple[int, int]]) -> None:
        try:
            self.post_message(InsideTextRead(self._saved.validation_excerpt(path), units))
        except (ValueError, OSError) as exc:  # DataError is a ValueError
            self.post_message(InsideFailed(f"no validation excerpt: {exc}"))

    @work(thread=True, exclusive=True, exit_on_error=False, group="inside")
    def _inspect_saved(self, run_dir: Path, text: str, units: list[tuple[int, int]]) -> None:
        try:
            self.post_message(InspectionMade(self._saved.inspect(run_dir, text, units)))
        except (ValueError, OSError) as exc:
            self.post_message(InsideFailed(f"cannot open the saved model: {exc}"))

    @work(thread=True, exclusive=True, exit_on_error=False, group="query")
    def _sample_saved(self, run_dir: Path, settings: SampleSettings) -> None:
        try:
            text = self._saved.sample(run_dir, settings.prime, settings.length, settings.temperature,
                                      settings.top_k)
        except (ValueError, OSError) as exc:
            self.post_message(WorkFailed(str(exc)))
            return
        self.post_message(SavedModelSampled(Sampled(-1, text, settings.temperature, settings.prime)))

    @work(thread=True, exclusive=True, exit_on_error=False, group="query")
    def _classify_saved(self, run_dir: Path, name: str) -> None:
        try:
            self.post_message(SavedModelClassified(name, self._saved.classify(run_dir, name)))
        except (ValueError, OSError) as exc:
            self.post_message(WorkFailed(str(exc)))

    # -- what the workers found (each handler runs only while the app's widgets are there) -------
    @on(DevicesListed)
    def _devices_listed(self, message: DevicesListed) -> None:
        if not self._widgets_gone():
            self._show_devices(message.devices)

    @on(SavedModelSampled)
    def _saved_model_sampled(self, message: SavedModelSampled) -> None:
        if self._widgets_gone():
            return
        e = message.sample
        heading = f"sample · saved model · T={e.temperature}"
        self.query_one(SampleLog).add_sample(heading, e.text)
        self.query_one(LatestStrip).show_sample(heading, e.text)
        self._latest_sample = e.text
        self._sample_for_inside()
        self.action_tab("train")

    @on(SavedModelClassified)
    def _saved_model_classified(self, message: SavedModelClassified) -> None:
        if not self._widgets_gone() and message.name == self.query_one("#clf-input", Input).value.strip():
            self.query_one(ClassifierQuery).show_results(message.name, message.results)

    @on(CheckReported)
    def _check_reported(self, message: CheckReported) -> None:
        if not self._widgets_gone():
            self._show_check(message.report, log=True)

    @on(InspectionMade)
    def _inspection_made(self, message: InspectionMade) -> None:
        if not self._widgets_gone():
            self.query_one(InsideView).show_result(message.result)

    @on(InsideTextRead)
    def _inside_text_read(self, message: InsideTextRead) -> None:
        if not self._widgets_gone():
            self._inspect(message.text, message.units)

    @on(InsideFailed)
    def _inside_failed(self, message: InsideFailed) -> None:
        if not self._widgets_gone():
            self.query_one(InsideView).show_message(message.reason)

    @on(WorkFailed)
    def _work_failed(self, message: WorkFailed) -> None:
        if not self._widgets_gone():
            self.notify(message.error, severity="error")

    @on(EngineNoted)
    def _engine_noted(self, message: EngineNoted) -> None:
        if not self._widgets_gone():
            self.log_activity(message.text)

    # -- what the run says --------------------------------------------------------------------------
    def on_run_replied(self, message: RunReplied) -> None:
        if not self._current(message.run_dir):
            return
        m = message.message
        purpose = self._pending.pop(m.get("id"), "") if "ok" in m else ""
        if "event" in m:
            event = event_from_dict(m["event"])
            current = self.query_one("#clf-input", Input).value.strip()
            if isinstance(event, Classified) and event.names and event.names[0] == current:
                self.query_one(ClassifierQuery).show_results(current, [tuple(r) for r in event.results[0]])
            elif isinstance(event, Inspected):
                self.query_one(InsideView).show_result(event.result)
            elif isinstance(event, Checked):
                self._show_check(event.report, log=False)  # the log line comes with events.jsonl
        elif not m.get("ok", True):
            error = m.get("error", "refused")
            if purpose == "apply" and m.get("errors"):
                self.query_one(HyperparameterForm).show_errors(m["errors"])
            self.log_activity(f"[yellow]refused: {error}[/]")
            self.notify(f"Refused: {error}", severity="error", timeout=8)
        elif purpose == "devices":
            self._show_devices(m.get("devices", {}))

    def on_run_status(self, message: RunStatus) -> None:
        if not self._current(message.run_dir):
            return
        st = message.state
        view = self.view
        if not view.ended:
            view.state = st.state
        record = st.record
        resources = describe_resources(record.get("cpu_percent"), record.get("rss_bytes"),
                                       record.get("gpu")) if st.live else ""
        activity = record.get("activity", "") if st.live else ""
        note = endpoint_note(record) if st.live else ""
        if note != self._endpoint_note:
            self._endpoint_note = note
            if note:
                down = not record.get("socket")
                self.log_activity(f"[{'red' if down else 'yellow'}]{note}[/]")
                if down:
                    self.notify(f"Run {view.run_id} {note}", severity="error", timeout=15)
        if note and not record.get("socket"):
            activity = f"no control endpoint: {stop_hint(record)}"
        self.query_one(StatusLine).show_process(resources, activity)
        if st.state == "starting" and self.state in ("attaching", "starting"):
            self.set_state("starting")
        elif st.state in ("running", "paused") and self.state == "attaching":
            self.set_state("training" if st.state == "running" else "paused")

    def on_run_ended(self, message: RunEnded) -> None:
        if not self._current(message.run_dir):
            return
        view = self.view
        view.ended = True
        view.state = message.state
        if view.client is not None:
            view.client.close()
            view.client = None
        self.set_state(message.state)
        self.query_one(StatusLine).show_process("", "")
        if message.error:  # the watch over the runs tells of it, with the bell
            self.log_activity(f"[red]{message.error}[/]")
        self._scan_runs()
        if self._quit_when_ended:
            self.exit()

    def on_run_events(self, message: RunEvents) -> None:
        if not self._current(message.run_dir):
            return
        batch, replay = message.batch, message.replay
        loss = self.query_one(LossPanel)
        if batch.steps:
            loss.add_steps(batch.steps)
        if batch.last_step is not None:
            self._last_step = batch.last_step
            if self.state in ("starting", "attaching", "resuming"):
                self.set_state("training")
        log: list[str | Text] = []
        samples: list[tuple[str, str]] = []
        grads: GradientsMeasured | None = None
        for e in batch.events:
            if isinstance(e, GradientsMeasured):
                grads = e  # only the newest is shown
            else:
                self._handle_event(e, log, samples, replay)
        if grads is not None:
            self.query_one(GradientPanel).show_measurement(grads)
        if log:
            self.log_activity(*log)
        if samples:
            self.query_one(SampleLog).add_samples(samples)
            self.query_one(LatestStrip).show_sample(*samples[-1])
            self._latest_sample = samples[-1][1]
            self._sample_for_inside()
        if batch.events or replay:
            self._redraw(force_plot=replay, panes=True)
        elif batch.steps:
            self._redraw_soon()

    def _redraw_soon(self) -> None:
        """Redraw what steps change at most every REDRAW_EVERY seconds, and always the newest."""
        if self._draw_pending:
            return
        wait = self._drawn + REDRAW_EVERY - time.monotonic()
        if wait <= 0:
            self._redraw()
        else:
            self._draw_pending = True
            self.set_timer(wait, self._redraw)

    def _redraw(self, force_plot: bool = False, panes: bool = False) -> None:
        """The status line; and the panes when `panes`, or when they were last drawn PANES_EVERY ago."""
        if self._widgets_gone():
            return
        self._draw_pending = False
        now = self._drawn = time.monotonic()
        if self._last_step is not None:
            self.query_one(StatusLine).show_step(self._last_step)
        if panes or force_plot or now - self._panes_drawn >= PANES_EVERY:
            self._panes_drawn = now
            if self._last_step is not None:
                self.query_one(GradientPanel).show_step(self._last_step)
                self.query_one(LatestStrip).show_step(self._last_step)
            self.query_one(LossPanel).redraw(force_plot=force_plot)

    def _handle_event(self, e: Event, log: list[str | Text], samples: list[tuple[str, str]],
                      replay: bool) -> None:
        """Show what `e` says (event_text) and update the widgets and the view's state it changes."""
        view = self.view
        shown = describe(e, view.task, replay)
        log.extend(shown.log)
        samples.extend(shown.samples)
        if shown.notice is not None:
            self.notify(shown.notice[0], severity=shown.notice[1], timeout=10)
        status = self.query_one(StatusLine)
        if isinstance(e, RunStarted):
            view.world_size = e.world_size
            status.device = e.device + (f" x {e.world_size} ranks" if e.world_size > 1 else "")
            # a run this app has just started had no config.json yet when its view opened
            status.unit = _unit(e.task)
            view.config = RunConfig.from_dict(e.config)
            self.set_state("training")
        elif isinstance(e, (Evaluated, EpochFinished)):
            self.query_one(LossPanel).add_val(e.step, e.val_loss)
            status.show_process(status.resources, "")
            if e.confusion:
                self.query_one(ClassifierQuery).show_confusion(e.labels, e.confusion, e.epoch)
        elif isinstance(e, EvaluationProgress):
            if not replay:
                status.show_process(status.resources, f"evaluating {'(full) ' if e.full else ''}"
                                                       f"{e.done / max(e.total, 1):.0%}")
        elif isinstance(e, RunPaused):
            self._paused_wanted = True
            if not view.ended:
                view.state = "paused"
            self.set_state("paused")
        elif isinstance(e, RunResumed):
            self._paused_wanted = False
            if not view.ended:
                view.state = "running"
            self.set_state("training")
        elif isinstance(e, HyperparametersApplied):
            if view.config is not None:
                view.config = view.config.updated(**e.changes)
        elif isinstance(e, DeviceSwitched):
            status.device = e.device
            if view.config is not None:
                view.config = view.config.updated(device=e.device)
        elif isinstance(e, Sampled):
            if e.reason == "asked" and not replay:
                self.action_tab("train")
        elif isinstance(e, RunFinished):
            status.show_final(e.summary)
            self.set_state(final_state(e.reason))


def make_app(config: RunConfig | None = None, runs_dir: Path | str = "runs",
             attach: Path | None = None, bell: bool | None = None) -> WorkbenchApp:
    """The app for a config (defaults: char LM on the bundled corpus), optionally showing a run.

    `bell` rings the terminal bell with each notice; None takes RNN_WORKBENCH_BELL (0 turns it off).
    """
    config = config or default_config("charlm", data=str(default_data("charlm")))
    if bell is None:
        bell = os.environ.get("RNN_WORKBENCH_BELL", "1") != "0"
    return WorkbenchApp(config, runs_dir, attach, bell)


def _unit(task: str) -> str:
    """What a task's speed is counted in."""
    return "chars" if task == "charlm" else "names"

