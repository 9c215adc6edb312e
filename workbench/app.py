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
from textual import on, work
from textual.app import App, SystemCommand
from textual.widgets import Input, TabbedContent
from textual.worker import get_current_worker

from rnn_engine.config import LIVE_FIELDS, ConfigError, RunConfig, default_config
from rnn_engine.control.client import RunUnavailable
from rnn_engine.events import Checked, Classified, GradientsMeasured, Inspected, event_from_dict
from rnn_engine.rundir.launch import command_line, start_run, training_argv
from rnn_engine.rundir.layout import RunDir, RunDirError
from rnn_engine.rundir.liveness import endpoint_note, stop_hint
from rnn_engine.rundir.runs import describe_resources, new_run_id, run_info, run_name, scan_runs

from .actions import APP, WORKSPACE, bindings
from .curves import ChartSettings
from .event_text import describe
from .live_apply import live_changes, names_with_and
from .messages import DevicesListed, EngineNoted, RunEnded, RunEvents, RunReplied, RunsScanned, RunStatus
from .notices import RunWatch
from .paths import default_data
from .run_view import RunView
from .saved_model import ENGINE_LOGGER, EngineLog
from .screens.device import DeviceScreen
from .screens.help import HelpScreen
from .screens.quit import QuitScreen
from .screens.sample import SampleScreen, SampleSettings
from .screens.workspace import Workspace
from .session import RunSession, unit
from .widgets.classifier_query import ClassifierQuery
from .widgets.hyper_form import HyperparameterForm
from .widgets.inside_view import InsideView

SCAN_EVERY = 2.0  # seconds between reads of the runs directory


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
        self.config = config  # the settings the next run starts with
        self.runs_dir = Path(runs_dir)
        self.session = RunSession(self._state_changed)
        self.farewell = ""  # printed after the app closes (a run left running)
        self._attach_first = attach
        self.launched: list[Any] = []  # processes this app started, reaped as they end
        self._engine_log: logging.Handler | None = None
        self.workspace = Workspace(ChartSettings(), config)

    def get_default_screen(self) -> Workspace:
        return self.workspace

    def on_ready(self) -> None:
        # the workspace's widgets are all there once the app is ready (not yet when it mounts)
        self._engine_log = EngineLog(lambda text: self.workspace.post_message(EngineNoted(text)))
        engine = logging.getLogger(ENGINE_LOGGER)
        engine.addHandler(self._engine_log)
        engine.setLevel(logging.INFO)
        self._show_task()
        self._scan_runs()
        self.set_interval(SCAN_EVERY, self._scan_runs)
        if self._attach_first is not None:
            self.attach(self._attach_first)
        else:
            self.workspace.train.log(f"data: {Path(self.config.data).name or '(none)'}")

    def on_unmount(self) -> None:
        logging.getLogger(ENGINE_LOGGER).removeHandler(self._engine_log)
        if self.session.view is not None:
            self.session.view.close()

    def get_system_commands(self, screen) -> Iterable[SystemCommand]:
        """The command palette (Ctrl+P) lists every action with its key."""
        yield from super().get_system_commands(screen)
        for owner, actions in ((self, APP), (self.workspace, WORKSPACE)):
            for a in actions:
                if a.palette:
                    yield SystemCommand(f"{a.name} ({a.shown_keys.split(' / ')[0]})", a.help,
                                        getattr(owner, f"action_{a.id}"))

    def _show_task(self) -> None:
        """The header and the samples pane say which task is shown."""
        session = self.session
        cfg = session.config or self.config
        task = "char language model" if cfg.task == "charlm" else "name classifier"
        run = f" · run {session.run_id}" if session.view is not None else ""
        self.sub_title = f"{task} · {Path(cfg.data).name or 'no data'}{run}"
        self.workspace.train.show_task(cfg.task)

    def _state_changed(self, state: str) -> None:
        self.workspace.status.set_state(state)
        self.workspace.query_one(ClassifierQuery).prompt(self.session.classifier_hint())

    def _showing(self, run_dir: Path) -> bool:
        """`run_dir` is the run shown, and the widgets that show it are still there."""
        # workers can post after the app began to close; the screens are then taken down one widget
        # at a time while queued messages are still handled, so no single widget tells it
        view = self.session.view
        return (view is not None and view.run_dir == run_dir and self.is_running
                and self.workspace.train.is_attached)

    def send(self, cmd: str, args: dict[str, Any] | None = None, purpose: str = "") -> bool:
        """Send a command to the shown run; says why not when it cannot go."""
        session = self.session
        refusal = session.refusal()
        if refusal is not None:
            self.notify(refusal.message, severity=refusal.severity)
            return False
        try:
            request = session.view.connect(self.post_message).send(cmd, args)
        except RunUnavailable as exc:
            session.view.client = None
            self.notify(f"{cmd}: {exc}", severity="error")
            return False
        session.asked(cmd, request, purpose)
        return True

    # -- following a run ----------------------------------------------------------------------------
    def attach(self, run_dir: Path, process: Any = None) -> None:
        """Show a run: replay its history, then follow it while it lives."""
        if self.session.view is not None:
            self.session.view.close()
        view = RunView(Path(run_dir), process)
        config, error = view.settings()
        self.workspace.clear()
        self.workspace.status.reset(view.run_id, unit(config.task if config else "charlm"))
        self.session.follow(view, process is not None, config, error)
        if config is not None:
            # a run started here keeps the form's auto fields; another run's form shows its sizes
            self.workspace.query_one(HyperparameterForm).set_config(config, keep_auto=process is not None)
            self.workspace.status.device = config.device
        self._show_task()
        self.workspace.train.log(f"[b]{'started' if process is not None else 'attached to'} run "
                                 f"{view.run_id}[/]", *([f"[red]{error}[/]"] if error else []))
        self._follow(view)

    @work(thread=True, exclusive=True, exit_on_error=False, group="follow", description="follow run")
    def _follow(self, view: RunView) -> None:
        # a worker thread: it only posts messages, and ends when the app cancels its workers on exit
        worker = get_current_worker()
        view.follow(self.post_message, lambda: worker.is_cancelled)

    @work(thread=True, exclusive=True, exit_on_error=False, group="scan", description="scan runs")
    def _scan_runs(self) -> None:
        for child in list(self.launched):
            if child.poll() is not None:  # reap the processes this app started once they end
                self.launched.remove(child)
        from rnn_engine.sweep.listing import scan_sweeps

        self.post_message(RunsScanned(scan_runs(self.runs_dir), scan_sweeps(self.runs_dir)))

    def on_runs_scanned(self, message: RunsScanned) -> None:
        if not self.is_running or not self.workspace.train.is_attached:
            return
        self.workspace.query_one("#runs-table").show(message.runs)
        watched = list(message.runs)
        view = self.session.view
        if view is not None and all(Path(r.path).resolve() != view.run_dir.resolve() for r in watched):
            shown = run_info(view.run_dir)  # a run attached from another directory is watched too
            if shown is not None:
                watched.append(shown)
        for notice in self._watch.look(watched) + self._watch.look_at_sweeps(message.sweeps):
            self.notify(notice.message, severity=notice.severity, timeout=12)
            self.workspace.train.log(f"[{'red' if notice.severity == 'error' else 'b'}]{notice.message}[/]")
            if self.bell_on:
                self.bell()

    # -- what the run says --------------------------------------------------------------------------
    def on_run_replied(self, message: RunReplied) -> None:
        if not self._showing(message.run_dir):
            return
        m = message.message
        purpose = self.session.answered(m.get("id")) if "ok" in m else ""
        space = self.workspace
        if "event" in m:
            event = event_from_dict(m["event"])
            current = space.query_one("#clf-input", Input).value.strip()
            if isinstance(event, Classified) and event.names and event.names[0] == current:
                space.query_one(ClassifierQuery).show_results(current, [tuple(r) for r in event.results[0]])
            elif isinstance(event, Inspected):
                space.query_one(InsideView).show_result(event.result)
            elif isinstance(event, Checked):
                space.show_check(event.report, log=False)  # the log line comes with events.jsonl
        elif not m.get("ok", True):
            error = m.get("error", "refused")
            if purpose == "apply" and m.get("errors"):
                space.query_one(HyperparameterForm).show_errors(m["errors"])
            space.train.log(f"[yellow]refused: {error}[/]")
            self.notify(f"Refused: {error}", severity="error", timeout=8)
        elif purpose == "devices":
            self._show_devices(DevicesListed(m.get("devices", {})))

    def on_run_status(self, message: RunStatus) -> None:
        if not self._showing(message.run_dir):
            return
        st, session, status = message.state, self.session, self.workspace.status
        session.status(st.state)
        record = st.record
        resources = describe_resources(record.get("cpu_percent"), record.get("rss_bytes"),
                                       record.get("gpu")) if st.live else ""
        activity = record.get("activity", "") if st.live else ""
        note = endpoint_note(record) if st.live else ""
        if session.endpoint(note) and note:
            down = not record.get("socket")
            self.workspace.train.log(f"[{'red' if down else 'yellow'}]{note}[/]")
            if down:
                self.notify(f"Run {session.run_id} {note}", severity="error", timeout=15)
        if note and not record.get("socket"):
            activity = f"no control endpoint: {stop_hint(record)}"
        status.show_process(resources, activity)

    def on_run_ended(self, message: RunEnded) -> None:
        if not self._showing(message.run_dir):
            return
        view = self.session.view
        if view.client is not None:
            view.client.close()
            view.client = None
        self.session.ended_as(message.state)
        self.workspace.status.show_process("", "")
        if message.error:  # the watch over the runs tells of it, with the bell
            self.workspace.train.log(f"[red]{message.error}[/]")
        self._scan_runs()
        if self.session.quit_when_ended:
            self.exit()

    def on_run_events(self, message: RunEvents) -> None:
        if not self._showing(message.run_dir):
            return
        batch, replay, session, space = message.batch, message.replay, self.session, self.workspace
        if batch.last_step is not None:
            session.stepped()
        grads = None
        shown = []
        for e in batch.events:
            if isinstance(e, GradientsMeasured):
                grads = e  # only the newest is shown
                continue
            session.event(e)
            shown.append(describe(e, session.task, replay))
            space.show_panes(shown[-1])
        space.status.unit = unit(session.task)  # a run just started has said its task by now
        space.train.show(batch.steps, batch.last_step, grads, shown, replay)
        if any(s.samples for s in shown):
            space.new_sample()

    # -- steering the shown run ---------------------------------------------------------------------
    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_start(self, resume: Path | None = None, config: RunConfig | None = None,
                     given: tuple[str, ...] | None = None) -> None:
        if self.session.live:
            self.notify(f"Run {self.session.run_id} is live: x stops it, p pauses it; or open another "
                        "run on the Runs tab first.", severity="warning")
            return
        left_to_auto: tuple[str, ...] | None = ()
        if config is None:
            form = self.workspace.query_one(HyperparameterForm)
            left_to_auto = form.left_to_auto()
            try:
                config = form.read()
            except ConfigError as exc:
                self.workspace.action_tab("hyper")
                self.notify("Not started: " + "; ".join(f"{k} {v}" for k, v in exc.errors.items()),
                            severity="error", timeout=8)
                return
        self.config = config
        run_id = new_run_id(config)
        argv = training_argv(config, self.runs_dir, run_id, str(resume) if resume else None, given,
                             left_to_auto)
        try:
            process = start_run(argv, self.runs_dir / run_id)
        except OSError as exc:
            self.notify(f"Not started: {self.runs_dir}: {exc.strerror or exc}", severity="error")
            return
        self.launched.append(process)
        self.workspace.action_tab("train")
        self.attach(self.runs_dir / run_id, process)
        self.workspace.train.log(Text("same as: " + command_line(argv), style="dim"))

    def action_pause(self) -> None:
        self.send(self.session.pause_command())

    def action_single_step(self) -> None:
        if self.session.refusal() is None and not self.session.paused_wanted:
            self.notify("Single steps work while paused: press p first.")
        else:
            self.send("step")

    def action_stop(self) -> None:
        self.send("stop")

    def action_evaluate_full(self) -> None:
        if self.send("evaluate", {"full": True}):
            self.notify("Evaluating on the whole validation split at the next batch; the status line "
                        "shows how far it has got.")

    def action_apply(self) -> None:
        form, session = self.workspace.query_one(HyperparameterForm), self.session
        if not session.live or session.config is None:
            try:
                self.config = form.read()
            except ConfigError as exc:
                self.notify("Not saved: " + "; ".join(f"{k} {v}" for k, v in exc.errors.items()),
                            severity="error")
                return
            self.notify("Saved; they take effect when the next run starts (s).")
            return
        live, rest, errors = live_changes(form.values(), session.config)
        form.show_errors(errors)
        bad_live = {k: v for k, v in errors.items() if k in LIVE_FIELDS}
        if bad_live:  # what would apply is wrong: say so and send nothing
            self.notify("Not applied: " + "; ".join(f"{k} {v}" for k, v in bad_live.items()),
                        severity="error")
            return
        if live:
            self.send("apply", {"changes": live}, purpose="apply")
        if rest:
            verb = "needs" if len(rest) == 1 else "need"
            sent = f"Sent {', '.join(live)}; " if live else "Nothing sent: "
            self.notify(f"{sent}{names_with_and(rest)} {verb} a new run (x stops this one, then s; or r "
                        "forks it).", severity="warning", timeout=8)
        elif not live:
            self.notify("Nothing changed that can apply mid-run.")

    def action_sample(self) -> None:
        cfg = self.session.config or self.config
        self.push_screen(SampleScreen(cfg.temperature, cfg.top_k, cfg.sample_length or 300),
                         self._sample_chosen)

    def _sample_chosen(self, settings: SampleSettings | None) -> None:
        session = self.session
        if settings is None:
            return
        if session.view is None or session.task != "charlm":
            self.notify("No language model shown: start a char-LM run (s) or attach one (Runs tab).",
                        severity="warning")
        elif session.live:
            args = {"prime": settings.prime, "temperature": settings.temperature,
                    "length": settings.length, "top_k": settings.top_k}
            if self.send("sample", args):
                self.notify("Sampling at the next batch…")
        else:
            self.workspace.answers.sample(session.view.run_dir, settings.prime, settings.length,
                                          settings.temperature, settings.top_k)

    def action_check(self) -> None:
        session = self.session
        if session.view is None:
            self.notify("No model: s starts a run, or Enter on the Runs tab (4) opens one; then k.")
        elif session.live:
            if self.send("check"):
                self.notify("Comparing with torch.nn at the next batch…")
        elif RunDir(session.view.run_dir).last.exists():
            self.workspace.answers.check(session.view.run_dir)
        else:
            self.notify(f"Run {session.run_id} has no saved model to check.", severity="warning")

    def action_device(self) -> None:
        session = self.session
        if session.live and session.world_size > 1:
            self.notify(f"A job of {session.world_size} ranks stays on its devices: stop it (x), then "
                        "resume it on others (r, or workbench train --resume).", severity="warning")
        elif session.live:
            self.send("devices", purpose="devices")
        else:
            from rnn_engine.training.devices import available_devices

            self.run_worker(lambda: self.post_message(DevicesListed(available_devices())), thread=True,
                            exclusive=True, exit_on_error=False, group="devices")

    @on(DevicesListed)
    def _show_devices(self, message: DevicesListed) -> None:
        if not self.workspace.train.is_attached:
            return
        status = self.workspace.status
        # a live run's own device (from its events), else the setting for the next run
        current = status.device.split(" ")[0] if self.session.live else str(self.config.device)

        def chosen(device: str | None) -> None:
            if not device:
                return
            if self.session.live and device == current:
                self.notify(f"The run is on {device} already.")
            elif self.session.live:
                if self.send("device", {"name": device}, purpose="device"):
                    self.notify(f"Moving to {device} at the next batch…")
            else:
                self.config = self.config.updated(device=device)
                self.workspace.query_one(HyperparameterForm).set_config(self.config)
                status.device = device
                status.refresh_text()
        self.push_screen(DeviceScreen(message.devices, current), chosen)

    def action_switch_task(self) -> None:
        if self.session.live:
            self.notify("The run shown is live: stop it first (x), or leave it and start another.",
                        severity="warning")
            return
        task = "names" if self.config.task == "charlm" else "charlm"
        self.config = default_config(task, data=str(default_data(task)), device=self.config.device)
        self.workspace.query_one(HyperparameterForm).set_config(self.config)
        self.workspace.train.log(f"task: {task} on {Path(self.config.data).name}")
        self.notify(f"Task: {'name classifier' if task == 'names' else 'char language model'}; "
                    "s starts it, 3 opens the classifier pane.")

    def action_resume_run(self) -> None:
        session, space = self.session, self.workspace
        on_runs = space.query_one("#tabs", TabbedContent).active == "runs"
        path = space.query_one("#runs-table").selected() if on_runs else (
            session.view.run_dir if session.view is not None and not session.live else None)
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
            current = space.query_one(HyperparameterForm).read()
        except ConfigError:
            current = self.config
        # the run goes on with the settings it had when it stopped (live changes included, from its
        # checkpoint) and its data; only the budget and the device come from the form
        budget = {k: getattr(current, k) for k in ("epochs", "time_budget", "max_steps", "device")}
        self.action_start(resume=files.last, config=saved.updated(**budget), given=tuple(budget))

    async def action_quit(self) -> None:
        session = self.session
        if not session.live:
            self.exit()
            return
        view = session.view
        self.push_screen(QuitScreen(view.run_id, view.process is not None, run_name(view.run_dir)),
                         self._quit_chosen)

    def _quit_chosen(self, choice: str | None) -> None:
        session, view = self.session, self.session.view
        if choice is None or view is None:
            return
        if choice == "leave" or not session.live:
            if session.live:
                self.farewell = (f"run {view.run_id} is still running; follow it again with: "
                                 f"workbench attach {run_name(view.run_dir)}")
            self.exit()
        elif session.run_state == "starting" and view.process is not None:
            view.process.terminate()  # it has not trained yet: there is nothing to save
            self.exit()
        elif self.send("stop"):
            session.asked("quit")
            self.notify("Stopping at the next batch and saving; the workbench closes when it has.")
        else:
            self.farewell = (f"run {view.run_id} could not be reached to stop it and may still be "
                             f"running; see workbench runs, or workbench ctl {run_name(view.run_dir)} stop")
            self.exit()


def make_app(config: RunConfig | None = None, runs_dir: Path | str = "runs",
             attach: Path | None = None, bell: bool | None = None) -> WorkbenchApp:
    """The app for a config (defaults: char LM on the bundled corpus), optionally showing a run.

    `bell` rings the terminal bell with each notice; None takes RNN_WORKBENCH_BELL (0 turns it off).
    """
    config = config or default_config("charlm", data=str(default_data("charlm")))
    if bell is None:
        bell = os.environ.get("RNN_WORKBENCH_BELL", "1") != "0"
    return WorkbenchApp(config, runs_dir, attach, bell)
