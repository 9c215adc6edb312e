"""The workspace: the status line, the five tabs and the footer, and the keys that move between them.

The app owns the shown run (its session, its commands); this screen lays out what shows it and
answers the questions the tabs ask of its model: the Classifier tab's surname, the Inside tab's
text, a sample or a check of an ended run's saved model (model_answers.py, in worker threads). It
also starts and opens sweeps, which begin on the Hyperparameters tab.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import events, on
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Input, TabbedContent, TabPane

from rnn_engine.analysis.check import describe_check
from rnn_engine.config import MAX_INSPECT, ConfigError
from rnn_engine.rundir.launch import command_line, start_run, sweep_argv
from rnn_engine.rundir.layout import RunDir

from ..actions import WORKSPACE, bindings
from ..curves import ChartSettings
from ..event_text import Shown
from ..messages import (
    CheckReported,
    EngineNoted,
    InsideFailed,
    InsideTextRead,
    InspectionMade,
    SavedModelClassified,
    SavedModelSampled,
    WorkFailed,
)
from ..model_answers import ModelAnswers
from ..widgets.classifier_query import ClassifierQuery
from ..widgets.hyper_form import HyperparameterForm
from ..widgets.inside_view import InsideView
from ..widgets.runs_list import RunsList
from ..widgets.status_line import StatusLine
from ..widgets.train_view import TrainView
from .compare import CompareScreen
from .sweep import SweepScreen
from .sweep_start import SweepPicker, SweepStartScreen

if TYPE_CHECKING:
    from ..app import WorkbenchApp

COMPACT_WIDTH, COMPACT_HEIGHT = 120, 36  # below either, the Train tab is one scrolling column


class Workspace(Screen[None]):
    """The app's main screen: every tab of the shown run, and the keys that move between them."""

    BINDINGS = bindings(WORKSPACE)  # actions.py: the one table of keys
    app: WorkbenchApp

    def __init__(self, chart: ChartSettings, form_config: Any) -> None:
        super().__init__()
        self.chart = chart
        self._form_config = form_config  # the Hyperparameters tab's first values
        self.answers = ModelAnswers(self)
        self.status = StatusLine(id="status")
        self.train = TrainView(chart, self.status, id="train-panes")
        self._inside_stale = True  # the Inside tab's text changed since it was last inspected

    def compose(self) -> ComposeResult:
        yield Header()
        yield self.status
        with TabbedContent(initial="train", id="tabs"):
            with TabPane("Train [1]", id="train"):
                yield self.train
            with TabPane("Hyperparameters [2]", id="hyper"):
                yield HyperparameterForm(self._form_config, id="form")
            with TabPane("Classifier [3]", id="classify"):
                yield ClassifierQuery(id="classifier")
            with TabPane("Runs [4]", id="runs"):
                yield RunsList(id="runs-table")
            with TabPane("Inside [5]", id="inside"):
                yield InsideView(id="inside-view")
        yield Footer()

    def on_resize(self, event: events.Resize) -> None:
        # an 80×24 SSH terminal gets one scrolling column, the newest sample and ‖g‖ at the top
        compact = event.size.width < COMPACT_WIDTH or event.size.height < COMPACT_HEIGHT
        self.app.set_class(compact, "-compact")
        footer = self.query_one(Footer)
        footer.compact = compact
        # the palette's docked label covered the end of a footer wider than 80 columns ("palettea");
        # ctrl+p still opens it, and ? lists every key
        footer.show_command_palette = not compact

    def clear(self) -> None:
        """Another run is shown: nothing of the last one stays."""
        self.train.clear()
        self.query_one(ClassifierQuery).clear()
        self.query_one(InsideView).clear()
        self._inside_stale = True

    def show_panes(self, shown: Shown) -> None:
        """What an event changes outside the Train tab's panes: the status line, the classifier, a notice."""
        if shown.notice is not None:
            self.notify(shown.notice[0], severity=shown.notice[1], timeout=10)
        if shown.device is not None:
            self.status.device = shown.device
        if shown.activity is not None:
            self.status.show_process(self.status.resources, shown.activity)
        if shown.confusion is not None:
            self.query_one(ClassifierQuery).show_confusion(*shown.confusion)
        if shown.final is not None:
            self.status.show_final(shown.final)
        if shown.auto is not None:
            self.query_one(HyperparameterForm).show_auto(shown.auto)
        if shown.to_train:
            self.action_tab("train")

    # -- tabs and fields ----------------------------------------------------------------------------
    def action_tab(self, tab: str) -> None:
        tabs = self.query_one("#tabs", TabbedContent)
        if tabs.active == tab:
            self._focus_pane(tab)  # TabActivated only fires on a change
        tabs.active = tab

    def action_enter_field(self) -> None:
        """Enter that no focused widget takes moves into the tab's text field."""
        tab = self.query_one("#tabs", TabbedContent).active
        if tab == "classify":
            self.query_one("#clf-input", Input).focus()
        elif tab == "hyper":
            self.query_one(HyperparameterForm).focus_first()

    def action_leave_field(self) -> None:
        if isinstance(self.focused, Input):
            self.set_focus(self.query_one(InsideView) if self.focused.id == "inside-input" else None)

    @on(TabbedContent.TabActivated)
    def _focus_pane(self, event: TabbedContent.TabActivated | str | None) -> None:
        # land in the pane's first field, so typing goes where the eye is
        pane = event.pane.id if isinstance(event, TabbedContent.TabActivated) else event
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
            self.train.focus()

    # -- runs tab -----------------------------------------------------------------------------------
    @on(DataTable.RowSelected, "#runs-table")
    def _open_run(self, event: DataTable.RowSelected) -> None:
        path = Path(str(event.row_key.value))
        session = self.app.session
        if session.view is None or session.view.run_dir != path:
            if session.live:
                self.notify(f"Run {session.run_id} goes on running; the Runs tab lists it.")
            self.app.attach(path)
        self.action_tab("train")

    @on(RunsList.CompareRequested)
    def _compare(self, message: RunsList.CompareRequested) -> None:
        self.app.push_screen(CompareScreen(message.runs, self.chart))

    # -- sweeps -------------------------------------------------------------------------------------
    def action_open_sweep(self) -> None:
        from rnn_engine.sweep.listing import scan_sweeps

        sweeps = scan_sweeps(self.app.runs_dir)
        if not sweeps:
            self.notify("No sweeps here yet: on the Hyperparameters tab (2), W shows a sweep column; write "
                        "ranges there (1e-4..1e-2 log, gru | lstm) and W again starts one.", timeout=10)
        elif len(sweeps) == 1:
            self._show_sweep(sweeps[0])
        else:
            self.app.push_screen(SweepPicker(sweeps), lambda chosen: chosen and self._show_sweep(chosen))

    def _show_sweep(self, sweep: Any) -> None:
        def chosen(run_dir: Path | None) -> None:
            if run_dir is not None:
                self.app.attach(run_dir)
                self.action_tab("train")
        self.app.push_screen(SweepScreen(sweep), chosen)

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
        self.app.push_screen(SweepStartScreen(names),
                             lambda plan: plan and self._launch_sweep(base, space, plan))

    def _launch_sweep(self, base: Any, space: Any, plan: Any) -> None:
        from rnn_engine.sweep.listing import SweepInfo
        from rnn_engine.sweep.study import default_storage, sweep_dir

        runs_dir = self.app.runs_dir
        directory = sweep_dir(runs_dir, plan.study)
        try:
            directory.mkdir(parents=True, exist_ok=True)
            (directory / "space.toml").write_text(space.to_toml(), encoding="utf-8")
        except OSError as exc:
            self.notify(f"Not started: {directory}: {exc.strerror or exc}", severity="error")
            return
        argv = sweep_argv(base, directory / "space.toml", runs_dir, plan.study, plan.trials,
                          plan.parallel, plan.pruner)
        self.app.launched.append(start_run(argv, directory))
        self.train.log(f"sweep {plan.study}: {command_line(argv)}")
        self.notify(f"Sweep {plan.study} starting: {plan.trials} trials, {plan.parallel} at a time.")
        metric = "accuracy" if base.task == "names" else "val_loss"
        self._show_sweep(SweepInfo(plan.study, directory, default_storage(runs_dir, plan.study), metric,
                                   "starting", None, time.time(), {"trials": plan.trials}))

    # -- questions to the shown run's model ---------------------------------------------------------
    @on(Input.Changed, "#clf-input")
    def _query_name(self, event: Input.Changed) -> None:
        name = event.value.strip()
        session = self.app.session
        if not name or session.view is None or session.task != "names":
            # an emptied box: no stale answer stays
            self.query_one(ClassifierQuery).show_message(session.classifier_hint())
        elif session.live:
            self.app.send("classify", {"names": [name], "top_k": 5})
        else:
            self.answers.classify(session.view.run_dir, name)

    def sampled(self, heading: str, text: str) -> None:
        """A new sample: the Inside tab reads it now if it shows samples and is open, else when opened."""
        self.train.add_sample(heading, text)
        self.new_sample()

    def new_sample(self) -> None:
        if self.query_one(InsideView).source != "sample":
            return
        if self.query_one("#tabs", TabbedContent).active == "inside":
            self.query_one(InsideView).request()
        else:
            self._inside_stale = True

    @on(InsideView.Wanted)
    def _inside_wanted(self, message: InsideView.Wanted) -> None:
        inside = self.query_one(InsideView)
        session = self.app.session
        typed = message.text.strip()
        if session.view is None:
            inside.show_message("no model yet: start a run (s) or open one on the Runs tab (4)")
        elif session.task == "names" and (message.source != "typed" or not typed):
            inside.show_message("A name classifier: press e, type a name and press Enter to see, letter "
                                "by letter, how its top-3 languages change as the network reads it.")
        elif message.source == "typed":
            if typed:
                self._inspect(typed if session.task == "names" else message.text, message.units)
            else:
                inside.show_message("Press e, type a text and press Enter; c goes back to the samples.")
        elif message.source == "sample":
            if self.train.latest_sample:
                self._inspect(self.train.latest_sample, message.units)
            else:
                inside.show_message("no sample yet: one comes with each evaluation, or g generates one "
                                    "now; c reads a validation excerpt instead")
        elif session.config is not None:
            self.answers.validation_text(Path(session.config.data), message.units)

    def _inspect(self, text: str, units: list[tuple[int, int]]) -> None:
        """Inspect `text` where the model is: in the live run, else on its saved checkpoint."""
        session = self.app.session
        if session.view is None:
            return
        if session.live:
            if session.run_state == "starting":
                self.query_one(InsideView).show_message("the run is still starting; this tab reads its "
                                                        "model once it runs")
            else:
                self.app.send("inspect", {"text": text[-MAX_INSPECT:], "units": [list(u) for u in units]})
        elif RunDir(session.view.run_dir).last.exists():
            self.answers.inspect(session.view.run_dir, text, units)
        else:
            self.query_one(InsideView).show_message(f"run {session.run_id} has no saved model to read")

    def show_check(self, report: dict[str, Any], log: bool) -> None:
        line = describe_check(report)
        if log:
            self.train.log(line)
        self.notify(line, severity="error" if "error" in report else "information", timeout=10)

    # -- what the saved models answered -------------------------------------------------------------
    @on(SavedModelSampled)
    def _saved_model_sampled(self, message: SavedModelSampled) -> None:
        e = message.sample
        self.sampled(f"sample · saved model · T={e.temperature}", e.text)
        self.action_tab("train")

    @on(SavedModelClassified)
    def _saved_model_classified(self, message: SavedModelClassified) -> None:
        if message.name == self.query_one("#clf-input", Input).value.strip():
            self.query_one(ClassifierQuery).show_results(message.name, message.results)

    @on(CheckReported)
    def _check_reported(self, message: CheckReported) -> None:
        self.show_check(message.report, log=True)

    @on(InspectionMade)
    def _inspection_made(self, message: InspectionMade) -> None:
        self.query_one(InsideView).show_result(message.result)

    @on(InsideTextRead)
    def _inside_text_read(self, message: InsideTextRead) -> None:
        self._inspect(message.text, message.units)

    @on(InsideFailed)
    def _inside_failed(self, message: InsideFailed) -> None:
        self.query_one(InsideView).show_message(message.reason)

    @on(WorkFailed)
    def _work_failed(self, message: WorkFailed) -> None:
        self.notify(message.error, severity="error")

    @on(EngineNoted)
    def _engine_noted(self, message: EngineNoted) -> None:
        self.train.log(message.text)
