"""The followed run as the app knows it, without Textual: one state machine the widgets only show.

A `RunSession` holds which run is shown, its settings, its state in one word, what was asked of it
and is still pending, and whether it can be steered. Everything that changes the state comes in
through a method named for its source: `status` (the run's live.json), `event` (its events.jsonl),
`stepped`, `ended`, and `asked` (a command that went out). The app shows `state` wherever it is
read; nothing else keeps a copy of it.

The words: the run's own (`starting`, `running`, `paused`, then `finished`, `stopped`, `pruned`,
`failed` or `dead`), as its live.json and `workbench runs` say them; `attaching` until a run
opened from its directory has said which; and, while a command has gone out and the run has not
yet done it, `pausing`, `resuming`, `stopping` or `saving`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rnn_engine.config import RunConfig
from rnn_engine.events import (
    DeviceSwitched,
    Event,
    HyperparametersApplied,
    RunFinished,
    RunPaused,
    RunResumed,
    RunStarted,
    final_state,
)
from rnn_engine.rundir.liveness import ACTIVE

if TYPE_CHECKING:
    from .run_view import RunView  # posts Textual messages; the session only holds it

# what a command that went out makes the run's state, until the run says it has done it
ASKING = {"pause": "pausing", "resume": "resuming", "stop": "stopping", "quit": "saving"}


@dataclass(frozen=True)
class Refusal:
    """Why nothing can be sent to the shown run, as the user is told it."""

    message: str
    severity: str = "information"


class RunSession:
    """The shown run's state and what was asked of it; `on_state` hears each change of the word."""

    def __init__(self, on_state: Callable[[str], None] = lambda state: None) -> None:
        self.view: RunView | None = None
        self.config: RunConfig | None = None  # the run's settings, live changes included
        self.config_error = ""  # why its config.json could not be read
        self.state = "idle"
        self.run_state = "starting"  # the run's own word, from live.json and its events
        self.ended = False  # its end has been seen: nothing it says later changes the state
        self.world_size = 1
        self.paused_wanted = False  # the user asked it to pause (p) and has not asked it to go on
        self.quit_when_ended = False  # the app closes once the run has stopped and saved
        self.endpoint_note = ""  # what live.json says of a failed control endpoint
        self._pending: dict[int, str] = {}  # request id -> what the reply is for
        self._on_state = on_state

    # -- which run ----------------------------------------------------------------------------------
    def follow(self, view: RunView, started: bool, config: RunConfig | None = None,
               config_error: str = "") -> None:
        """Show `view`'s run from now on: started by this app, or opened from its directory."""
        self.view, self.config, self.config_error = view, config, config_error
        self.run_state, self.ended, self.world_size = "starting", False, 1
        self.paused_wanted, self.endpoint_note = False, ""
        self._pending.clear()
        self._set("starting" if started else "attaching")

    @property
    def run_id(self) -> str:
        return self.view.run_id if self.view is not None else ""

    @property
    def live(self) -> bool:
        """The run can still train: its process lives, as far as the app has seen."""
        return self.view is not None and self.run_state in ACTIVE and not self.ended

    @property
    def task(self) -> str:
        return self.config.task if self.config is not None else "charlm"

    # -- steering -----------------------------------------------------------------------------------
    def refusal(self) -> Refusal | None:
        """None when a command can go to the shown run; else why not."""
        if self.view is None:
            return Refusal("No run: s starts one, or Enter on the Runs tab (4) attaches one.")
        if not self.live:
            return Refusal(f"Run {self.run_id} is {self.run_state}: it takes no commands. r resumes or "
                           "forks it.", "warning")
        if self.run_state == "starting":
            return Refusal(f"Run {self.run_id} is still starting (loading data, building kernels); "
                           "its commands work once it runs.")
        return None

    def pause_command(self) -> str:
        """What p sends: pause a running run, resume one the user paused."""
        return "resume" if self.paused_wanted else "pause"

    def asked(self, command: str, request: int | None = None, purpose: str = "") -> None:
        """`command` went out as `request`; a reply that matters is kept under its `purpose`."""
        if purpose and request is not None:
            self._pending[request] = purpose
        if command in ("pause", "resume"):
            self.paused_wanted = command == "pause"
        if command == "quit":
            self.quit_when_ended = True
        if command in ASKING:
            self._set(ASKING[command])

    def answered(self, request: int | None) -> str:
        """The purpose a reply was awaited for ('' when none was); it is no longer pending."""
        return self._pending.pop(request, "") if request is not None else ""

    @property
    def pending(self) -> dict[int, str]:
        return dict(self._pending)

    # -- what the run says --------------------------------------------------------------------------
    def status(self, run_state: str) -> None:
        """The run's live.json says `run_state`."""
        if not self.ended:
            self.run_state = run_state
        if run_state == "starting" and self.state in ("attaching", "starting"):
            self._set("starting")
        elif run_state in ("running", "paused") and self.state == "attaching":
            self._set(run_state)

    def stepped(self) -> None:
        """The run logged a step: it runs, whatever was awaited before."""
        if self.state in ("starting", "attaching", "resuming"):
            self._set("running")

    def event(self, e: Event) -> None:
        """What one of the run's events changes of the state and the settings."""
        if isinstance(e, RunStarted):
            self.world_size = e.world_size
            # a run this app has just started had no config.json yet when it was opened
            self.config = RunConfig.from_dict(e.config)
            self._set("running")
        elif isinstance(e, (RunPaused, RunResumed)):
            paused = isinstance(e, RunPaused)
            self.paused_wanted = paused
            if not self.ended:
                self.run_state = "paused" if paused else "running"
            self._set("paused" if paused else "running")
        elif isinstance(e, HyperparametersApplied) and self.config is not None:
            self.config = self.config.updated(**e.changes)
        elif isinstance(e, DeviceSwitched) and self.config is not None:
            self.config = self.config.updated(device=e.device)
        elif isinstance(e, RunFinished):
            self._set(final_state(e.reason))

    def ended_as(self, state: str) -> None:
        """The run's process is over and its directory says how: the last word."""
        self.ended, self.run_state = True, state
        self._set(state)

    def endpoint(self, note: str) -> bool:
        """The control endpoint's note from live.json; True when it is news."""
        if note == self.endpoint_note:
            return False
        self.endpoint_note = note
        return True

    # -- words for the panes ------------------------------------------------------------------------
    def classifier_hint(self) -> str:
        """What the Classifier tab says while its box is empty: which model would answer, if any."""
        if self.view is None or self.config is None:
            return ("no model yet: train the name classifier (t switches task, s starts) or open a names "
                    "run on the Runs tab (4)")
        if self.task != "names":
            return (f"run {self.run_id} is a language model: t switches to the name task for the next run, "
                    "or open a names run on the Runs tab (4)")
        if self.live:
            return f"run {self.run_id} is {self.state}: type a surname above and the model as it is now " \
                "answers"
        return f"run {self.run_id} ({self.state}): type a surname above and its saved model answers"

    def _set(self, state: str) -> None:
        self.state = state
        self._on_state(state)


def unit(task: str) -> str:
    """What a task's speed is counted in."""
    return "chars" if task == "charlm" else "names"
