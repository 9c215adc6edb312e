"""Inside the network as text: activations shaded character by character, and gate saturation tables.

What `workbench inspect` prints and the Inside tab draws, from the plain numbers an inspection
(analysis.inside) returns; no torch here, so a viewer can draw them without loading a model.
"""

from __future__ import annotations

import base64
from typing import Any, TextIO

# 256-colour backgrounds from strong blue (h = -1) through near-white (0) to strong red (+1); the
# foreground is set too, black on the pale ones and white on the strong ones, so the text reads
# the same on dark and on light terminals
SCALE = [(21, 231), (27, 231), (33, 16), (75, 16), (117, 16), (255, 16), (224, 16), (217, 16),
         (210, 16), (203, 16), (196, 231)]


# without colour: one marker per character on the line below the text
MARKS = [(-0.5, "="), (-0.1, "-"), (0.1, " "), (0.5, "+"), (float("inf"), "#")]


def unpack_activations(packed: str) -> list[float]:
    """Activations as inside.inspection sends them (base64 bytes, signed, h*127) back in [-1, 1]."""
    return [(b - 256 if b > 127 else b) / 127 for b in base64.b64decode(packed)]


def scale_step(value: float, low: float, high: float, steps: int) -> int:
    """Which of `steps` shades a value in [low, high] takes (clamped)."""
    return round((min(high, max(low, value)) - low) / (high - low) * (steps - 1))


def render(text: str, values: list[float], colour: bool, out: TextIO, width: int = 100) -> None:
    """The text with each character shaded by its value in [-1, 1] (colour or ASCII markers)."""
    for line, vals in _lines(text, values, width):
        if colour:
            cells = []
            for ch, v in zip(line, vals):
                bg, fg = SCALE[scale_step(v, -1.0, 1.0, len(SCALE))]
                cells.append(f"\x1b[38;5;{fg};48;5;{bg}m{ch}")
            out.write("  " + "".join(cells) + "\x1b[0m\n")
        else:
            out.write("  " + line + "\n")
            marks = "".join(next(m for limit, m in MARKS if v < limit) for v in vals)
            out.write("  " + marks.rstrip() + "\n")


def _lines(text: str, values: list[float], width: int) -> list[tuple[str, list[float]]]:
    """Display lines: the text's own lines cut at `width`; a newline shows as a '↵' cell."""
    lines, cur, vals = [], [], []
    for ch, v in zip(text, values):
        shown = "↵" if ch == "\n" else (" " if ch == "\t" or not ch.isprintable() else ch)
        cur.append(shown)
        vals.append(v)
        if ch == "\n" or len(cur) >= width:
            lines.append(("".join(cur), vals))
            cur, vals = [], []
    if cur:
        lines.append(("".join(cur), vals))
    return lines


def render_saturation(sat: dict[str, dict[str, dict[str, Any]]]) -> str:
    """Per layer and gate: the share of units by how often they are left and right saturated."""
    rows = ["gate saturation: each unit's fraction of steps with the gate < 0.1 (left) and > 0.9 (right)"]
    for layer, gates in sat.items():
        for name, g in gates.items():
            left, right = g["left"], g["right"]
            n = len(left)
            mostly_left = sum(1 for v in left if v > 0.5)
            mostly_right = sum(1 for v in right if v > 0.5)
            rows.append(f"  {layer} gate {name}: left {g['mean_left']:.0%} right {g['mean_right']:.0%} "
                        f"of unit-steps; {mostly_left}/{n} units mostly closed, {mostly_right}/{n} mostly "
                        f"open  left ▕{_histogram(left)}▏ right ▕{_histogram(right)}▏")
    return "\n".join(rows) + "\n"


def _histogram(fractions: list[float], bins: int = 10) -> str:
    """Units per tenth of the 0..1 range as block characters, 0 on the left."""
    counts = [0] * bins
    for v in fractions:
        counts[min(bins - 1, int(v * bins))] += 1
    top = max(counts) or 1
    blocks = " ▁▂▃▄▅▆▇█"
    return "".join(blocks[round(c / top * (len(blocks) - 1))] for c in counts)
