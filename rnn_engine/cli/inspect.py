"""`workbench inspect`: a trained model's units on a text, coloured in the terminal, or as JSON."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from ..analysis.render import render, render_saturation, unpack_activations
from ..config import MAX_INSPECT
from .parsing import CliError, add_run_argument


def add_parser(sub: Any) -> None:
    i = sub.add_parser("inspect", help="what a trained model's units track, character by character")
    add_run_argument(i)
    i.set_defaults(func=inspect_run)
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


def inspect_run(args: argparse.Namespace, argv: list[str]) -> int:
    """A live run reads the text itself, between two batches; any other run, from its checkpoint."""
    from ..data.text import read_text
    from ..model.checkpoint import load
    from ..rundir.layout import RunDir, RunDirError
    from ..rundir.liveness import run_state
    from ..rundir.runs import RunNotFound, resolve_model

    if args.top < 0:
        raise CliError("inspect: --top must be >= 0")
    try:
        path = resolve_model(args.run, args.runs_dir)
    except RunNotFound as exc:
        raise CliError(f"inspect: {exc}") from None
    live = path.is_dir() and run_state(path).live
    if live:  # a live run may not have saved yet: its shape comes from config.json
        try:
            config = RunDir(path).settings()
        except RunDirError as exc:
            raise CliError(f"inspect: {exc}") from None
        # a live classifier answers the Inside view's letter-by-letter question, not this one
        live = config.task == "charlm"
    if not live:
        config = (ck := load(path)).config
    text = args.prime if args.prime is not None else read_text(args.text)[: max(1, args.chars)]
    if not text:
        raise CliError("inspect: the text is empty")
    layers, hidden = config.num_layers, config.hidden_size
    wanted = [_parse_unit(spec, layers, hidden) for spec in args.unit]
    if live:
        text = text[-MAX_INSPECT:]  # what a live run reads for one request
        shown, sat, seconds, where = _read_live(path, text, wanted, args.top)
    else:
        try:
            shown, sat, seconds, where = _read_saved(ck, text, wanted, args.top)
        except ValueError as exc:  # a bidirectional model has no state after character t
            raise CliError(f"inspect: {exc}") from None
    from ..analysis.inside import MIN_OCCURRENCES, too_rare

    rare = too_rare(text)
    if args.json:
        print(json.dumps({"run": str(path), "cell": config.cell, "characters": len(text),
                          "seconds": round(seconds, 3), "read_by": where, "units": shown, "saturation": sat,
                          "too_rare": rare, "min_occurrences": MIN_OCCURRENCES}))
        return 0
    colour = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    out = sys.stdout
    ranked = any(u["feature"] != "—" for u in shown)
    how = ("units ranked by their strongest correlation with a feature of the text" if ranked else
           "the text is too short to rank units by what they track: units in order")
    out.write(f"{config.cell} {layers}x{hidden}, {len(text):,} characters read in {seconds:.2f} s "
              f"({where}); {how}\n")
    if rare:
        out.write(f"not ranked by (seen fewer than {MIN_OCCURRENCES} times here): "
                  + ", ".join(f"{name} ({n})" for name, n in rare.items()) + "\n")
    out.write("\n")
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
    from ..analysis.inside import activations, rank_units, saturation, trace

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


def _read_live(run_dir: Path, text: str, wanted: list[tuple[int, int]], top: int
               ) -> tuple[list[dict[str, Any]], dict[str, Any], float, str]:
    from ..control.client import RunClient, RunUnavailable

    try:
        with RunClient.connect(run_dir) as client:
            reply, event = client.call("inspect", {"text": text, "units": [list(u) for u in wanted]},
                                       answer=True)
    except RunUnavailable as exc:
        raise CliError(f"inspect: {exc}") from None
    if not reply.get("ok") or event is None:
        raise CliError(f"inspect: refused: {reply.get('error', 'no answer')}")
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


def _parse_unit(spec: str, layers: int, hidden: int) -> tuple[int, int]:
    layer, sep, unit = spec.partition(":")
    if not sep or not layer.strip().isdigit() or not unit.strip().isdigit():
        raise CliError(f"inspect: --unit {spec!r} is not LAYER:UNIT (e.g. 0:17)")
    layer_i, unit_i = int(layer), int(unit)
    if layer_i >= layers or unit_i >= hidden:
        raise CliError(f"inspect: --unit {spec}: the model has {layers} layer(s) of {hidden} units")
    return layer_i, unit_i


