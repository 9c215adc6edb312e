"""The help screen: every key (from the app's one table, actions.py), what the panes show, and how to
read the gradient view."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown, Static

from ..actions import key_table

HELP = """
# RNN Workbench — keys

{keys}

Letter and digit keys act from every tab, and those listed for one pane act there. Switching tabs
never puts the cursor in a text field: `Enter` (or `Tab`) moves into one, where keys type until
`Esc` leaves it. F-keys always work.
On a small terminal the Train tab is one column: PgDn and the arrows scroll it.

## Runs live on their own
Every run is a process of its own with its directory `runs/<run-id>/`: `config.json`,
`events.jsonl` (everything that happened), `live.json` (its process, state, CPU and memory),
`last.pt` and `best.pt`, and while it trains a control socket. The workbench only shows and steers
runs: closing it, or losing the SSH connection, does not stop a run. `workbench attach latest`
(or Enter on the Runs tab) shows one again; `workbench runs` lists them and `workbench ctl RUN
pause|resume|step|stop|apply lr=...` steers them from a shell.

## Reading the panes
- **train loss** is the mean cross-entropy of each batch in nats (per character for the language
  model, per name for the classifier); the sparkline shows means of the last 400 records, so an early
  spike does not flatten the curve. **val loss** is measured on held-out data: for the language model
  a fixed subset of the validation split (the last 10% of the text), after every epoch and at least
  every `eval_interval` seconds; for the classifier a stratified 10% of the names.
- **‖g‖ before clip** is the total gradient norm of the batch; **after** is what the optimiser used.
- **‖∂L_T/∂h_t‖** shows, for the last step's loss, how much each earlier hidden state matters.
  A curve that falls by orders of magnitude towards t = 1 is a vanishing gradient (typical of a
  vanilla tanh RNN); one that grows is exploding. It is measured every 50 steps (at most every 2 s).
- **Inside** shades a text by one hidden unit's h_t (blue −1, white 0, red +1). Units are ranked
  by how closely their activation follows a simple feature of the text (inside quotes, position in
  the line, vowel, ...): |r| is the Pearson correlation. Below, the same text is shaded by the
  gradient norm through time for the loss of predicting its last character. The work is done by
  the live run between two batches, or on the saved model of a finished one. For a classifier, type
  a name to see its top-3 languages after each letter.
- The second status line shows the run's process: CPU (100% is one core), memory, GPU memory and
  use on CUDA, and what it is busy with (evaluating, building kernels).
- When a run of the runs directory finishes, is stopped, fails, dies, is pruned by its sweep or
  pauses by itself (a NaN loss, out of memory), a notice says so and the terminal bell rings
  (`workbench --no-bell`, or RNN_WORKBENCH_BELL=0, keeps it quiet).

Press `Esc` or `?` to close.
""".replace("{keys}", key_table())


class HelpScreen(ModalScreen[None]):
    """Key reference and how to read the numbers."""

    BINDINGS = [("escape", "dismiss", "Close"), ("question_mark", "dismiss", "Close"),
                ("q", "dismiss", "Close")]

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > Vertical { width: 100; max-width: 100%; height: 90%; border: thick $primary;
                            background: $surface; }
    HelpScreen VerticalScroll { height: 1fr; }
    HelpScreen #help-close { height: 1; padding: 0 1; background: $primary-darken-2; }
    """

    def compose(self) -> ComposeResult:
        with Vertical():
            with VerticalScroll(id="help-body"):
                yield Markdown(HELP)
            yield Static("↑ ↓ PgUp PgDn Home End scroll · Esc, ? or q closes", id="help-close")

    def on_mount(self) -> None:
        self.query_one("#help-body").focus()  # the arrows and PgDn scroll at once
