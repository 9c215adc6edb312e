"""Turn the sweep's results (auto_fit/sweep.jsonl) into the rule the workbench reads (auto_rule.json)."""

from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

TEXTS = Path(__file__).resolve().parent.parent / "sample_texts"
REFERENCE = {"num_layers": 2, "hidden_size": 512}  # the shape whose speed places a machine among the points
FIXED = {**REFERENCE, "dropout": 0.3}  # the fixed default, for comparison
NAMES_FIXED = {"num_layers": 2, "hidden_size": 256, "dropout": 0.3}
# how much better than the fixed default a candidate must be to replace it: about the noise of one
# run (validation loss over the plays' 99,000 validation characters, nats/char; accuracy over ~930
# names, whose standard error is ~1.4 points)
MARGIN = {"charlm": 0.01, "names": 0.01}


from rnn_engine.config import AUTO_FIELDS  # noqa: E402 - run as a script from the checkout
from rnn_engine.training.probe import cpu_name  # noqa: E402


def train_chars(corpus: str, chars: int) -> int:
    from rnn_engine.data.text import train_end

    text = (TEXTS / corpus).read_text(encoding="utf-8")
    return train_end(len(text[:chars] if chars else text))


def cpu_features() -> list[str]:
    """The instructions the kernels' speed turns on."""
    flags = set()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            break
    return [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags]


def point_of(name: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """One point of the rule: where it sits (corpus size, reference characters) and what won there."""
    first = rows[0]
    ref = [r for r in rows if all(r["settings"][k] == v for k, v in REFERENCE.items())]
    if not ref:
        raise SystemExit(f"point {name}: no 2x512 run to place it by")
    best = min(rows, key=lambda r: r["val_loss"])
    fixed_rows = [r for r in rows if r["settings"] == FIXED]
    if fixed_rows and fixed_rows[0]["val_loss"] - best["val_loss"] <= MARGIN["charlm"]:
        best = fixed_rows[0]  # no better than the default by more than the noise
    if not set(best["settings"]) <= set(AUTO_FIELDS):
        raise SystemExit(f"point {name}: the best run sets {sorted(best['settings'])}, and a run fits only "
                         f"{', '.join(AUTO_FIELDS)} (config.AUTO_FIELDS)")
    fixed = [r["val_loss"] for r in rows if r["settings"] == FIXED]
    return {
        "name": name, "task": "charlm", "corpus": first["corpus"], "corpus_chars": first["corpus_chars"],
        "train_chars": train_chars(first["corpus"], first["corpus_chars"]),
        "budget": first["budget"], "threads": first["threads"], "precision": first["precision"],
        "reference_chars": round(ref[0]["chars_per_second"] * first["budget"]),
        "best": best["settings"],
        "best_val_loss": best["val_loss"], "fixed_default_val_loss": fixed[0] if fixed else None,
        "runs": len(rows),
    }


def names_point_of(name: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The classifier's point: training names and epochs, and what won by its metric."""
    first = rows[0]
    metric = "balanced_accuracy" if first["balance"] else "accuracy"
    best = max(rows, key=lambda r: r[metric])
    fixed_rows = [r for r in rows if r["settings"] == NAMES_FIXED]
    if fixed_rows and best[metric] - fixed_rows[0][metric] <= MARGIN["names"]:
        best = fixed_rows[0]
    fixed = [r[metric] for r in fixed_rows]
    return {"name": name, "task": "names", "train_items": first["train_items"], "epochs": first["epochs"],
            "balance": first["balance"], "metric": metric, "best": best["settings"],
            "best_score": best[metric], "fixed_default_score": fixed[0] if fixed else None,
            "runs": len(rows)}


def write_rule(rows: list[dict[str, Any]], path: Path) -> None:
    by_point: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_point[r["point"]].append(r)
    rule = {
        "about": "GRU language models trained for what a time budget buys at a measured speed (per point "
                 "the shape and dropout with the lowest validation loss), and name classifiers for a "
                 "number of epochs (the highest accuracy, or balanced accuracy with --balance, on a part "
                 "of the training names); benchmarks/auto_sweep.py",
        "measured_on": f"{cpu_name()} ({', '.join(cpu_features()) or 'no AVX2'}), {os.cpu_count()} cores",
        "points": [names_point_of(name, rs) if rs[0].get("task") == "names" else point_of(name, rs)
                   for name, rs in sorted(by_point.items())],
    }
    path.write_text(json.dumps(rule, indent=1) + "\n", encoding="utf-8")
    for p in rule["points"]:
        if p.get("task") == "names":
            print(f"{p['name']:22} {p['train_items']:,} names, {p['epochs']} epochs, by {p['metric']}: best "
                  f"{p['best']}  {p['best_score']:.4f}  fixed {p['fixed_default_score']}")
            for r in sorted(by_point[p["name"]], key=lambda r: -r[p["metric"]]):
                print(f"    {r['accuracy']:.4f} accuracy  {r['balanced_accuracy']:.4f} balanced  "
                      f"{r['settings']}")
            continue
        print(f"{p['name']:22} train {p['train_chars']:>8,}  2x512 sees {p['reference_chars']:>11,}  best "
              f"{p['best']}  {p['best_val_loss']:.4f}  fixed {p['fixed_default_val_loss']}")
        for r in sorted(by_point[p["name"]], key=lambda r: r["val_loss"]):
            print(f"    {r['val_loss']:.4f}  {r['settings']}  {r['steps']} steps, {r['epochs']} epochs")
