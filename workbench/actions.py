"""Every key of the app in one table: the bindings, the command palette, the help screen and the
manual's key table are all made from it, so none of them can disagree with another.

An `Action` names what a key does (`id`: the `action_<id>` method, or one with an argument), the
keys (Textual's names, comma-separated), a short `label` for the footer, a `name` for the palette
and the help, and a sentence of `help`. `APP` holds the app's own (the shown run's), `WORKSPACE`
the main screen's (tabs, fields, sweeps); the panes that have keys of their own take theirs from
the lists below.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding

KEY_NAMES = {"question_mark": "?", "left_square_bracket": "[", "right_square_bracket": "]", "left": "←",
             "right": "→", "up": "↑", "down": "↓", "space": "Space", "escape": "Esc", "enter": "Enter"}


@dataclass(frozen=True)
class Action:
    """One thing a key does, with the words each place that lists it uses."""

    id: str
    keys: str
    label: str
    name: str
    help: str
    footer: bool = False  # shown in the footer
    palette: bool = False  # offered by the command palette (`ctrl+p`)

    @property
    def shown_keys(self) -> str:
        """The keys as a person reads them: `?` / `F1`."""
        return " / ".join(_key(k) for k in self.keys.split(","))

    def binding(self) -> Binding:
        # never priority: a key typed into a focused field is the field's, not the app's
        return Binding(self.keys, self.id, self.label, show=self.footer)


def _key(name: str) -> str:
    name = KEY_NAMES.get(name, name)
    if len(name) in (2, 3) and name[0] == "f" and name[1:].isdigit():
        return name.upper()
    return name.replace("ctrl+", "^")


APP = [
    Action("help", "question_mark,f1", "Help", "Help", "every key, and how to read the panes",
           footer=True, palette=True),
    Action("start", "s,f5", "Start", "Start a run", "train with the Hyperparameters tab's values, as a "
           "process of its own", footer=True, palette=True),
    Action("pause", "p,f6", "Pause", "Pause or resume", "pause the run at the next batch, or continue it",
           footer=True, palette=True),
    Action("single_step", "n,f8", "Step", "Single step", "while paused, train exactly one batch",
           palette=True),
    Action("stop", "x,f7", "Stop", "Stop the run", "stop at the next batch and save a checkpoint",
           footer=True, palette=True),
    Action("apply", "a", "Apply", "Apply live hyperparameters", "lr, clip, temperature, top_k, "
           "weight_decay, sample_length and eval_interval change mid-run; the fields that need a new run "
           "are named", footer=True, palette=True),
    Action("sample", "g", "Sample", "Generate text now", "choose temperature, priming text and length",
           footer=True, palette=True),
    Action("evaluate_full", "v", "Full eval", "Evaluate on the whole validation split",
           "routine evaluations read a fixed subset", palette=True),
    Action("device", "d", "Device", "Choose the device", "CPU, CUDA or MPS; a run moves at the next batch",
           footer=True, palette=True),
    Action("check", "k", "Check vs torch.nn", "Check against torch.nn", "the model's outputs and gradients "
           "against torch.nn's layers with the same weights, on a batch of the run's data", palette=True),
    Action("switch_task", "t", "Task", "Switch task", "character language model ↔ name classifier, for the "
           "next run", palette=True),
    Action("resume_run", "r", "Resume/fork", "Resume or fork a run", "the selected run on the Runs tab, or "
           "the finished run shown, from its checkpoint, with the settings it had when it stopped",
           palette=True),
    Action("quit", "q,ctrl+q", "Quit", "Quit", "quit; while the run shown is live, asks: stop it and save, "
           "or leave it running", footer=True),
]

# the workspace's (screens/workspace.py): they act on the tabs, so not while a dialog is open
WORKSPACE = [
    Action("tab('train')", "1", "Train", "Train tab", "loss, samples, gradients, the activity log"),
    Action("tab('hyper')", "2", "Params", "Hyperparameters tab", "every setting, its error beside it"),
    Action("tab('classify')", "3", "Classifier", "Classifier tab", "a surname's top languages as you type"),
    Action("tab('runs')", "4", "Runs", "Runs tab", "every run of the runs directory, kept current"),
    Action("tab('inside')", "5", "Inside", "Inside tab", "a text shaded by one hidden unit, units ranked"),
    Action("leave_field", "escape", "Leave field", "Leave a field", "leave a text field, close a dialog"),
    Action("enter_field", "enter", "Type", "Type", "move into the tab's text field (Runs tab: show the "
           "selected run)"),
    Action("open_sweep", "w", "Sweeps", "Open a sweep", "this directory's sweeps: trials, best, the metric "
           "against a parameter (there Enter opens a trial's run, m sorts, p the next parameter, x stops)"),
    Action("start_sweep", "W", "Start a sweep", "Start a sweep", "Hyperparameters tab: the sweep column (a "
           "range or choices beside a setting); W again starts it"),
]

TRAIN = [
    Action("smoothing(-1)", "left_square_bracket", "Less smoothing", "Less smoothing",
           "the loss charts' moving average (TensorBoard's), less"),
    Action("smoothing(1)", "right_square_bracket", "More smoothing", "More smoothing",
           "the loss charts' moving average, more"),
    Action("log_scale", "l", "Log scale", "Log scale", "the loss charts' loss axis: linear ↔ log"),
]

RUNS_LIST = [
    Action("mark", "space", "Mark to compare", "Mark a run", "mark runs to compare", footer=True),
    Action("compare", "c", "Compare", "Compare runs", "the marked runs' curves and final figures",
           footer=True),
]

INSIDE = [
    Action("unit(1)", "right", "Next unit", "Next unit", "the next unit of the layer", footer=True),
    Action("unit(-1)", "left", "Prev unit", "Previous unit", "the previous unit of the layer"),
    Action("layer(1)", "down", "Next layer", "Next layer", "the same unit of the next layer"),
    Action("layer(-1)", "up", "Prev layer", "Previous layer", "the same unit of the previous layer"),
    Action("ranked(1)", "u", "Next ranked", "Next ranked unit", "the next unit by how selectively it "
           "follows a feature of the text", footer=True),
    Action("ranked(-1)", "U", "Prev ranked", "Previous ranked unit", "the previous unit by selectivity"),
    Action("gates", "G", "Gates", "Gates", "gate saturation over the text (GRU, LSTM)", footer=True),
    Action("source", "c", "Text source", "Text source", "the latest sample, a validation excerpt, or typed "
           "text", footer=True),
    Action("edit", "e", "Type text", "Type a text", "type a text (a name for a classifier) and Enter",
           footer=True),
]

PANES = [("Train tab", TRAIN), ("Runs tab", RUNS_LIST), ("Inside tab", INSIDE)]


def bindings(actions: list[Action]) -> list[Binding]:
    return [a.binding() for a in actions]


def key_table() -> str:
    """Every key as a Markdown table: the help screen's and the manual's."""
    rows = ["| keys | where | action |", "| --- | --- | --- |"]
    for where, actions in [("everywhere", APP + WORKSPACE), *PANES]:
        for a in actions:
            keys = " / ".join(f"`{_key(k)}`" for k in a.keys.split(","))
            rows.append(f"| {keys} | {where} | **{a.name}**: {a.help} |")
    rows.append("| `^p` | everywhere | **Command palette**: every action above by name |")
    return "\n".join(rows)
