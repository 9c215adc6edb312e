"""Turn the sweep's results (auto_fit/sweep.jsonl) into the rule the workbench reads (auto_rule.json)."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

TEXTS = Path(__file__).resolve().parent.parent / "sample_texts"
REFERENCE = {"num_layers": 2, "hidden_size": 512}  # the shape whose speed places a machine among the points
FIXED = {**REFERENCE, "dropout": 0.3}  # the fixed default, for comparison


from rnn_engine.config import AUTO_FIELDS  # noqa: E402 - run as a script from the checkout


def train_chars(corpus: str, chars: int) -> int:
    from rnn_engine.data.text import train_end

    text = (TEXTS / corpus).read_text(encoding="utf-8")
    return train_end(len(text[:chars] if chars else text))


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def point_of(name: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """One point of the rule: where it sits (corpus size, reference characters) and what won there."""
    first = rows[0]
    ref = [r for r in rows if all(r["settings"][k] == v for k, v in REFERENCE.items())]
    if not ref:
        raise SystemExit(f"point {name}: no 2x512 run to place it by")
    best = min(rows, key=lambda r: r["val_loss"])
    if not set(best["settings"]) <= set(AUTO_FIELDS):
        raise SystemExit(f"point {name}: the best run sets {sorted(best['settings'])}, and a run fits only "
                         f"{', '.join(AUTO_FIELDS)} (config.AUTO_FIELDS)")
    fixed = [r["val_loss"] for r in rows if r["settings"] == FIXED]
    return {
        "name": name, "corpus": first["corpus"], "corpus_chars": first["corpus_chars"],
        "train_chars": train_chars(first["corpus"], first["corpus_chars"]),
        "budget": first["budget"], "threads": first["threads"], "precision": first["precision"],
        "reference_chars": round(ref[0]["chars_per_second"] * first["budget"]),
        "best": best["settings"],
        "best_val_loss": best["val_loss"], "fixed_default_val_loss": fixed[0] if fixed else None,
        "runs": len(rows),
    }


def write_rule(rows: list[dict[str, Any]], path: Path) -> None:
    by_point: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_point[r["point"]].append(r)
    rule = {
        "about": "GRU language models trained for what a time budget buys at a measured speed; per point "
                 "the shape and dropout with the lowest validation loss (benchmarks/auto_sweep.py)",
        "measured_on": cpu_name(),
        "points": [point_of(name, rs) for name, rs in sorted(by_point.items())],
    }
    path.write_text(json.dumps(rule, indent=1) + "\n", encoding="utf-8")
    for p in rule["points"]:
        print(f"{p['name']:22} train {p['train_chars']:>8,}  2x512 sees {p['reference_chars']:>11,}  best "
              f"{p['best']}  {p['best_val_loss']:.4f}  fixed {p['fixed_default_val_loss']}")
        for r in sorted(by_point[p["name"]], key=lambda r: r["val_loss"]):
            print(f"    {r['val_loss']:.4f}  {r['settings']}  {r['steps']} steps, {r['epochs']} epochs")
