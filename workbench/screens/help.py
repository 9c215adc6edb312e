"""The help screen: every key, what the panes show, and how to read the gradient view."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

HELP = """
# RNN Workbench — keys

| key | action |
| --- | --- |
| `s` / F5 | start a run with the form's hyperparameters |
| `p` / F6 | pause or resume |
| `n` / F8 | while paused: train exactly one batch |
| `x` / F7 | stop the run (saves a checkpoint) |
| `a` | apply live hyperparameters (lr, clip, temperature, top_k, weight_decay, sample_length) now |
| `g` | generate text now (temperature, priming text, length) |
| `d` | choose the device (CPU, CUDA, MPS); the run moves at the next batch |
| `t` | switch task: character language model ↔ name classifier |
| `1` `2` `3` `4` | Train, Hyperparameters, Classifier and Runs tabs |
| `r` | on the Runs tab: resume or fork the selected run from its checkpoint |
| `Enter` | on the Runs tab: open the selected run's curves and samples |
| `Esc` | leave a text field, close a dialog |
| `Ctrl+P` | command palette: every action by name |
| `?` | this help |
| `q` | quit: stops the run at the next batch and saves it |

Letter keys act when the focus is not in a text field; press `Esc` first (F-keys always work).

## Reading the panes
- **train loss** is the mean cross-entropy of each batch in nats (per character for the language
  model, per name for the classifier); the sparkline shows means of the last 400 steps, so an early
  spike does not flatten the curve. **val loss** is measured on the held-out split (the last 10% of
  the text, or a stratified 10% of the names) after every epoch.
- **‖g‖ before clip** is the total gradient norm of the batch; **after** is what the optimiser used.
- **‖∂L_T/∂h_t‖** shows, for the last step's loss, how much each earlier hidden state matters.
  A curve that falls by orders of magnitude towards t = 1 is a vanishing gradient (typical of a
  vanilla tanh RNN); one that grows is exploding. It is measured every 50 steps.
- Every run is saved under `runs/<run-id>/`: `config.json`, `events.jsonl`, `last.pt` and `best.pt`.

Press `Esc` or `?` to close.
"""


class HelpScreen(ModalScreen[None]):
    """Key reference and how to read the numbers."""

    BINDINGS = [("escape", "dismiss", "Close"), ("question_mark", "dismiss", "Close"),
                ("q", "dismiss", "Close")]

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 100; height: 40; border: thick $primary; background: $surface; }
    """

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Markdown(HELP)
