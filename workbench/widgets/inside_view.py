"""Inside pane: a text shaded by one hidden unit, units ranked by what they track, gates, gradients.

The pane only draws an inspection (`rnn_engine.analysis.inside.inspection`, computed by the run or on a
saved model) and asks for a new one with `InsideView.Wanted` when the text or the unit it needs
changes; the app decides where the work runs.
"""

from __future__ import annotations

import math
from typing import Any

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Input, Static

from rnn_engine.analysis.render import SCALE, render_saturation, scale_step, unpack_activations

from ..actions import INSIDE, bindings

SOURCES = ("sample", "validation", "typed")
SOURCE_NAMES = {"sample": "the latest sample", "validation": "a validation excerpt", "typed": "typed text"}
# light to strong orange for the gradient's share of its largest value, on a log scale
HEAT = [(255, 16), (230, 16), (223, 16), (216, 16), (209, 16), (202, 231), (196, 231)]
HEAT_DECADES = 6  # gradients more than 10^-6 below the largest one look the same as none


class InsideView(Vertical, can_focus=True):
    """Keys move the selection; the app answers `Wanted` with `show_result` or `show_message`."""

    DEFAULT_CSS = """
    InsideView { height: 1fr; }
    InsideView:focus { background: $boost; }
    InsideView #inside-head { height: auto; padding: 0 1; }
    InsideView #inside-body { height: 1fr; }
    InsideView #inside-text { height: auto; padding: 0 1; }
    InsideView #inside-grad { height: auto; padding: 1 1 0 1; }
    InsideView #inside-input { width: 100%; }
    """

    BINDINGS = bindings(INSIDE)  # the keys, from the app's one table (actions.py)

    class Wanted(Message):
        """An inspection is needed: of `source` (sample, validation, typed), with `units` included."""

        def __init__(self, source: str, text: str, units: list[tuple[int, int]]) -> None:
            super().__init__()
            self.source = source
            self.text = text
            self.units = units

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.result: dict[str, Any] | None = None
        self.source = "sample"
        self.typed = ""
        self.layer_no = 0
        self.unit_no = 0
        self.rank = 0  # position of the shown unit in the ranking
        self.gates = False
        self.asked: tuple[int, int] | None = None  # a unit asked for and not yet in a result
        self.fresh = False  # the next result starts at its top-ranked unit

    def compose(self) -> ComposeResult:
        yield Static("", id="inside-head")
        with VerticalScroll(id="inside-body"):
            yield Static("", id="inside-text")
            yield Static("", id="inside-grad")
        yield Input(placeholder="type a text (or a name for a classifier) and press Enter", id="inside-input")

    def on_mount(self) -> None:
        self.show_message("no model yet: start a run (s) or open one on the Runs tab (4); this tab then "
                          "shows what its units do")

    # -- what the app calls ----------------------------------------------------------------------------
    def clear(self) -> None:
        self.result = None
        self.layer_no = self.unit_no = self.rank = 0
        self.asked = None
        self.refresh_bindings()
        self.on_mount()

    def show_message(self, text: str) -> None:
        self.query_one("#inside-head", Static).update(Text(text, style="italic"))
        self.query_one("#inside-text", Static).update("")
        self.query_one("#inside-grad", Static).update("")

    def show_result(self, result: dict[str, Any]) -> None:
        first = self.result is None or self.result.get("kind") != result.get("kind")
        self.result = result
        if first:
            self.refresh_bindings()  # the unit keys come and go with a language model's units
        if result.get("kind") == "charlm":
            if self.asked is not None and f"{self.asked[0]}:{self.asked[1]}" in result["activations"]:
                self.layer_no, self.unit_no = self.asked
            elif first or self.fresh or not self._in_range():
                self.layer_no, self.unit_no = result["ranked"][0][:2]
            self.asked = None
            self.fresh = False
            self._sync_rank()
        self.redraw()

    def request(self, source: str | None = None) -> None:
        """Ask for an inspection of the current source (or `source`) from whoever has the model."""
        if source is not None and source != self.source:
            self.source = source
            self.fresh = True  # another text: start from its most selective unit
        units = [(self.layer_no, self.unit_no)] if self.result is not None else []
        self.post_message(self.Wanted(self.source, self.typed, units))

    @property
    def selected(self) -> tuple[int, int]:
        return self.layer_no, self.unit_no

    # -- keys ------------------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Offer the unit, layer, ranking and gate keys only where there are units to show."""
        if action in ("unit", "layer", "ranked", "gates"):
            return self._charlm()
        return True

    def action_unit(self, delta: int) -> None:
        if self._charlm():
            self._select(self.layer_no, (self.unit_no + delta) % self.result["hidden"])

    def action_layer(self, delta: int) -> None:
        if self._charlm():
            self._select((self.layer_no + delta) % self.result["layers"], self.unit_no)

    def action_ranked(self, delta: int) -> None:
        if self._charlm():
            ranked = self.result["ranked"]
            self.rank = (self.rank + delta) % len(ranked)
            self._select(*ranked[self.rank][:2])

    def action_gates(self) -> None:
        self.gates = not self.gates
        self.redraw()

    def action_source(self) -> None:
        if self.result is not None and self.result.get("kind") == "names":
            self.action_edit()
            return
        self.request(SOURCES[(SOURCES.index(self.source) + 1) % len(SOURCES)]
                     if self.source != "typed" or self.typed else "sample")

    def action_edit(self) -> None:
        self.query_one("#inside-input", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        text = event.value.strip("\n")
        if text.strip():
            self.typed = text
            self.focus()
            self.request("typed")

    # -- drawing ---------------------------------------------------------------------------------------
    def _charlm(self) -> bool:
        return self.result is not None and self.result.get("kind") == "charlm"

    def _in_range(self) -> bool:
        return self.layer_no < self.result["layers"] and self.unit_no < self.result["hidden"]

    def _sync_rank(self) -> None:
        for i, (layer, unit, *_) in enumerate(self.result["ranked"]):
            if (layer, unit) == (self.layer_no, self.unit_no):
                self.rank = i
                return

    def _select(self, layer: int, unit: int) -> None:
        self.layer_no, self.unit_no = layer, unit
        self._sync_rank()
        if f"{layer}:{unit}" not in self.result["activations"] and self.asked != (layer, unit):
            self.asked = (layer, unit)
            self.post_message(self.Wanted(self.source, self.typed, [(layer, unit)]))
        self.redraw()

    def redraw(self) -> None:
        result = self.result
        if result is None:
            return
        if result.get("kind") == "names":
            self._draw_names(result)
            return
        if self.gates:
            self._draw_gates(result)
            return
        layer, unit = self.layer_no, self.unit_no
        ranked = result["ranked"]
        _, _, feature, r = ranked[self.rank]
        head = Text()
        head.append(f"layer {layer} · unit {unit}", style="bold")
        if feature == "—":  # no feature of this text occurs often enough to rank by
            head.append(f" · unit {self.rank + 1} of {len(ranked)} · the text is too short to rank units by "
                        "what they track")
        else:
            head.append(f" · #{self.rank + 1} of {len(ranked)} by selectivity · follows ")
            head.append(feature, style="bold")
            head.append(f" (r = {r:+.2f}: {'high' if r > 0 else 'low'} there)")
        rare = result.get("too_rare") or {}
        if rare:
            head.append(f"\nnot ranked by (seen fewer than {result.get('min_occurrences', 5)} times here): "
                        + ", ".join(f"{name} ({n})" for name, n in rare.items()), style="dim")
        minimal = result["cell"] in ("mingru", "minlstm")  # h positive and unbounded: shown about its mean
        scale = "h below (blue) and above (red) the unit's mean here" if minimal else \
            "h from −1 (blue) through 0 (white) to +1 (red)"
        head.append(f"\nreading {SOURCE_NAMES[self.source]}, {len(result['text']):,} characters "
                    f"({result['seconds']:.2f} s) · shade: {scale}\n", style="dim")
        head.append("←/→ unit  ↑/↓ layer  u/U next/previous ranked  G gates  c text source  e type text",
                    style="dim")
        self.query_one("#inside-head", Static).update(head)
        packed = result["activations"].get(f"{layer}:{unit}")
        values = None if packed is None else unpack_activations(packed)
        body = self.query_one("#inside-text", Static)
        if values is None:
            body.update(Text("fetching this unit's activations…", style="italic"))
        else:
            body.update(shade(result["text"], values, SCALE, -1.0, 1.0))
        self.query_one("#inside-grad", Static).update(gradient_text(result["text"], result.get("gradient")))

    def _draw_gates(self, result: dict[str, Any]) -> None:
        head = Text("gate saturation over this text", style="bold")
        head.append("\nG back to the units", style="dim")
        self.query_one("#inside-head", Static).update(head)
        sat = result.get("saturation") or {}
        body = render_saturation(sat) if sat else f"a {result['cell']} cell has no gates\n"
        explain = ("\nA gate is left-saturated below 0.1 (closed) and right-saturated above 0.9 (open); each "
                   "histogram counts units by the fraction of characters they spend there, from 0 on the "
                   "left to 1 on the right (after Karpathy, Johnson and Fei-Fei, 2015).")
        self.query_one("#inside-text", Static).update(Text(body + explain))
        self.query_one("#inside-grad", Static).update("")

    def _draw_names(self, result: dict[str, Any]) -> None:
        head = Text(f"reading {result['text']!r} letter by letter: the top languages after each letter",
                    style="bold")
        head.append("\ne type another name", style="dim")
        self.query_one("#inside-head", Static).update(head)
        rows = Text()
        # three languages a letter on one line: shorter names and bars on an 80-column terminal
        narrow = 0 < self.size.width < 105
        name_w, bar_w = (9, 4) if narrow else (12, 10)
        for ch, top in zip(result["text"], result["letters"]):
            rows.append(f" {ch} ", style="bold reverse")
            for label, p in top:
                bar = "█" * round(p * bar_w)
                rows.append(f" {label[:name_w]:>{name_w}} {p:5.1%} ")
                rows.append(f"{bar:<{bar_w}}", style="green")
            rows.append("\n")
        self.query_one("#inside-text", Static).update(rows)
        self.query_one("#inside-grad", Static).update("")


def shade(text: str, values: list[float | None], scale: list[tuple[int, int]], low: float,
          high: float) -> Text:
    """The text with each character's background from `scale` by its value; a newline shows as ↵."""
    out = Text()
    styles = [Style(color=f"color({fg})", bgcolor=f"color({bg})") for bg, fg in scale]
    for ch, v in zip(text, values):
        shown = "↵" if ch == "\n" else (" " if not ch.isprintable() else ch)
        if v is None:
            out.append(shown, style="dim")
        else:
            out.append(shown, style=styles[scale_step(v, low, high, len(scale))])
        if ch == "\n":
            out.append("\n")
    return out


def gradient_text(text: str, gradient: list[float | None] | None) -> Text:
    """The text shaded by log ‖∂L_T/∂h_t‖: which characters still move the loss at the last one."""
    out = Text()
    measured = [g for g in (gradient or []) if g is not None and g > 0]
    if not measured:
        return out
    top = math.log10(max(measured))
    logs = [None if g is None else (max(-HEAT_DECADES, math.log10(g) - top) if g > 0 else -HEAT_DECADES)
            for g in gradient]
    first = next(i for i, g in enumerate(gradient) if g is not None)
    out.append("gradient norm through time ‖∂L_T/∂h_t‖", style="bold")
    out.append(f": how strongly each character still moves the loss of predicting the last one (orange: "
               f"strong, white: ≥10^{HEAT_DECADES} weaker"
               f"{f'; measured over the last {len(text) - first} characters' if first else ''})\n",
               style="dim")
    out.append_text(shade(text[first:], logs[first:], HEAT, -HEAT_DECADES, 0.0))
    return out
