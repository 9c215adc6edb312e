"""`workbench inspect`: a trained model's units on a text, coloured in the terminal, or as JSON."""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from .protocol import MAX_INSPECT

# 256-colour backgrounds from strong blue (h = -1) through near-white (0) to strong red (+1); the
# foreground is set too, black on the pale ones and white on the strong ones, so the text reads
# the same on dark and on light terminals
SCALE = [(21, 231), (27, 231), (33, 16), (75, 16), (117, 16), (255, 16), (224, 16), (217, 16),
         (210, 16), (203, 16), (196, 231)]
# without colour: one marker per character on the line below the text
MARKS = [(-0.5, "="), (-0.1, "-"), (0.1, " "), (0.5, "+"), (2.0, "#")]


def unpack_activations(packed: str) -> list[float]:
    """Activations as inside.inspection sends them (base64 bytes, signed, h*127) back in [-1, 1]."""
    return [(b - 256 if b > 127 else b) / 127 for b in base64.b64decode(packed)]


def scale_step(value: float, low: float, high: float, steps: int) -> int:
    """Which of `steps` shades a value in [low, high] takes (clamped)."""
    return round((min(high, max(low, value)) - low) / (high - low) * (steps - 1))


def add_parser(sub: Any, parser_class: type) -> None:
    i = sub.add_parser("inspect", help="what a trained model's units track, character by character")
    i.add_argument("run", help="run directory, run id under --runs-dir, 'latest', or a .pt checkpoint")
    src = i.add_mutually_exclusive_group(required=True)
    src.add_argument("--text", metavar="FILE", help="a text file to read with the model")
    src.add_argument("--prime", metavar="TEXT", help="the text itself")
    i.add_argument("--top", type=int, default=5, metavar="K", help="how many of the most selective "
                   "units to show (default 5)")
    i.add_argument("--unit", action="append", default=[], metavar="LAYER:UNIT",
                   help="also show this unit (repeatable), e.g. 0:17")
    i.add_argument("--chars", type=int, default=20_000, help="read at most this many characters of "
                   "--text (default 20000)")
    i.add_argument("--json", action="store_true", help="print one JSON object: units (sorted by score, "
                   "with one activation per character) and gate saturation")
    i.add_argument("--runs-dir", default="runs", help="where runs are (default runs)")


def inspect_run(args: argparse.Namespace, fail: Any) -> int:
    """A live run reads the text itself, between two batches; any other run, from its checkpoint."""
    from .checkpoint import load
    from .config import RunConfig
    from .data import read_text
    from .liveness import run_state
    from .runs import RunNotFound, resolve_model

    if args.top < 0:
        fail("inspect: --top must be >= 0")
    try:
        path = resolve_model(args.run, args.runs_dir)
    except RunNotFound as exc:
        fail(f"inspect: {exc}")
    live = path.is_dir() and run_state(path).live
    if live:  # a live run may not have saved yet: its shape comes from config.json
        config = RunConfig.from_dict(json.loads((path / "config.json").read_text()))
        # a live classifier answers the Inside view's letter-by-letter question, not this one
        live = config.task == "charlm"
    if not live:
        config = (ck := load(path)).config
    text = args.prime if args.prime is not None else read_text(args.text)[: max(1, args.chars)]
    if not text:
        fail("inspect: the text is empty")
    layers, hidden = config.num_layers, config.hidden_size
    wanted = [_parse_unit(spec, layers, hidden, fail) for spec in args.unit]
    if live:
        text = text[-MAX_INSPECT:]  # what a live run reads for one request
        shown, sat, seconds, where = _read_live(path, text, wanted, args.top, fail)
    else:
        try:
            shown, sat, seconds, where = _read_saved(ck, text, wanted, args.top)
        except ValueError as exc:  # a bidirectional model has no state after character t
            fail(f"inspect: {exc}")
    if args.json:
        print(json.dumps({"run": str(path), "cell": config.cell, "characters": len(text),
                          "seconds": round(seconds, 3), "read_by": where, "units": shown, "saturation": sat}))
        return 0
    colour = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    out = sys.stdout
    out.write(f"{config.cell} {layers}x{hidden}, {len(text):,} characters read in {seconds:.2f} s "
              f"({where}); units ranked by their strongest correlation with a feature of the text\n\n")
    for u in shown:
        sign = "high" if u["correlation"] > 0 else "low"
        out.write(f"layer {u['layer']} unit {u['unit']}: {u['feature']} "
                  f"(|r| = {u['score']:.3f}, {sign} there)\n")
        render(text, u["activations"], colour, out)
        out.write("\n")
    if sat:
        out.write(render_saturation(sat))
    return 0


def _read_saved(ck: Any, text: str, wanted: list[tuple[int, int]], top: int
                ) -> tuple[list[dict[str, Any]], dict[str, Any], float, str]:
    from .inside import activations, rank_units, saturation, trace

    model = ck.build_model("cpu")
    t0 = time.perf_counter()
    tr = trace(model, ck.vocab, text)
    ranked = rank_units(tr, text)
    seconds = time.perf_counter() - t0
    shown = ranked[:top]
    for layer, unit in wanted:
        if not any(u.layer == layer and u.unit == unit for u in shown):
            shown.append(next(u for u in ranked if u.layer == layer and u.unit == unit))
    units = [{"layer": u.layer, "unit": u.unit, "feature": u.feature, "score": round(u.score, 4),
              "correlation": round(u.correlation, 4), "activations": activations(tr, u.layer, u.unit)}
             for u in shown]
    return units, saturation(tr), seconds, f"from the checkpoint of step {ck.step}"


def _read_live(run_dir: Path, text: str, wanted: list[tuple[int, int]], top: int, fail: Any
               ) -> tuple[list[dict[str, Any]], dict[str, Any], float, str]:
    from .client import RunClient, RunUnavailable

    try:
        with RunClient.connect(run_dir) as client:
            reply, event = client.call("inspect", {"text": text, "units": [list(u) for u in wanted]},
                                       answer=True)
    except RunUnavailable as exc:
        fail(f"inspect: {exc}")
    if not reply.get("ok") or event is None:
        fail(f"inspect: refused: {reply.get('error', 'no answer')}")
    result = event["result"]
    ranked = {(layer, unit): (feature, r) for layer, unit, feature, r in result["ranked"]}
    order = [(layer, unit) for layer, unit, *_ in result["ranked"]][:top]
    order += [u for u in wanted if u not in order]
    units = []
    for layer, unit in order:
        packed = result["activations"].get(f"{layer}:{unit}")
        if packed is None:
            continue  # beyond what one answer carries
        feature, r = ranked[(layer, unit)]
        values = [round(v, 4) for v in unpack_activations(packed)]
        units.append({"layer": layer, "unit": unit, "feature": feature, "score": round(abs(r), 4),
                      "correlation": r, "activations": values})
    return units, result["saturation"], result["seconds"], f"by the live run at step {event['step']}"


def _parse_unit(spec: str, layers: int, hidden: int, fail: Any) -> tuple[int, int]:
    layer, sep, unit = spec.partition(":")
    if not sep or not layer.strip().isdigit() or not unit.strip().isdigit():
        fail(f"inspect: --unit {spec!r} is not LAYER:UNIT (e.g. 0:17)")
    layer_i, unit_i = int(layer), int(unit)
    if layer_i >= layers or unit_i >= hidden:
        fail(f"inspect: --unit {spec}: the model has {layers} layer(s) of {hidden} units")
    return layer_i, unit_i


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
                        f"open  right ▕{_histogram(right)}▏ left ▕{_histogram(left)}▏")
    return "\n".join(rows) + "\n"


def _histogram(fractions: list[float], bins: int = 10) -> str:
    """Units per tenth of the 0..1 range as block characters, 0 on the left."""
    counts = [0] * bins
    for v in fractions:
        counts[min(bins - 1, int(v * bins))] += 1
    top = max(counts) or 1
    blocks = " ▁▂▃▄▅▆▇█"
    return "".join(blocks[round(c / top * (len(blocks) - 1))] for c in counts)
