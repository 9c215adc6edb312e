"""Defaults fitted to the budget: the measured best model for this machine's speed and this corpus.

`benchmarks/auto_sweep.py` trained a set of GRU language models for what a time budget buys at a
measured speed, on corpora of several sizes, and wrote each such point to `auto_rule.json`: the
corpus's size, how many characters the reference model (2 x 512) sees in the budget, and the shape
and dropout that reached the lowest validation loss. For a new run the probe measures how fast this
machine trains the reference shape at the precision that will run; the point nearest in corpus size
and characters-in-budget (both on a log scale) gives the settings the user did not set.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

from ..config import AUTO_FIELDS, RunConfig
from ..data.text import CharCorpus
from . import probe

RULE_FILE = Path(__file__).with_name("auto_rule.json")
REFERENCE = {"num_layers": 2, "hidden_size": 512}


@dataclass(frozen=True)
class AutoFit:
    """What auto set and why: the probe's speeds, the measured point it followed, the expected epochs."""

    settings: dict[str, Any]
    reference_chars_per_second: float
    chars_per_second: float
    expected_epochs: float
    point: str
    cached: bool

    def to_dict(self) -> dict[str, Any]:
        return {"settings": self.settings,
                "reference_chars_per_second": round(self.reference_chars_per_second),
                "chars_per_second": round(self.chars_per_second),
                "expected_epochs": round(self.expected_epochs, 2), "point": self.point,
                "cached_probe": self.cached}


def why_not(config: RunConfig, given: set[str], ranks: int = 1) -> str:
    """Why auto leaves `config` as it is ('' when it applies)."""
    if config.task != "charlm":
        return "the names classifier keeps its defaults"
    if config.preset:
        return f"the preset {config.preset} sets the model"
    if config.arch != "workbench":
        return f"the tutorial model {config.arch} has its own shape"
    if config.cell != "gru":
        return f"the auto sizes are measured for the GRU; {config.cell} keeps its defaults"
    if config.time_budget <= 0 or config.epochs or config.max_steps:
        return "auto fits a time budget, and this run is bounded by epochs or steps"
    if ranks > 1:
        return "auto measures one process's speed; a torchrun job keeps the defaults"
    if set(AUTO_FIELDS) <= given:
        return "every setting auto chooses was given"
    return ""


@cache
def rule() -> dict[str, Any]:
    """The measured points (auto_rule.json)."""
    return json.loads(RULE_FILE.read_text(encoding="utf-8"))


def nearest(train_chars: int, reference_chars: float) -> dict[str, Any]:
    """The measured point nearest to a corpus of `train_chars` where 2 x 512 sees `reference_chars`."""
    def distance(p: dict[str, Any]) -> float:
        return math.hypot(math.log(train_chars / p["train_chars"]),
                          math.log(reference_chars / p["reference_chars"]))

    return min(rule()["points"], key=distance)


def fit(config: RunConfig, corpus: CharCorpus, given: set[str],
        cache_: probe.SpeedCache | None = None) -> tuple[RunConfig, AutoFit]:
    """`config` with the settings not `given` fitted to this machine, the corpus and the budget."""
    speeds = cache_ if cache_ is not None else probe.SpeedCache()
    reference = replace(config, **REFERENCE)
    ref_speed, ref_cached = probe.speed(reference, corpus, speeds)
    train_chars = len(corpus.train)
    point = nearest(train_chars, ref_speed * config.time_budget)
    chosen = {k: v for k, v in point["best"].items() if k in AUTO_FIELDS and k not in given}
    fitted = replace(config, **chosen)
    same_shape = (fitted.num_layers, fitted.hidden_size) == (reference.num_layers, reference.hidden_size)
    rate, cached = (ref_speed, ref_cached) if same_shape else probe.speed(fitted, corpus, speeds)
    epochs = rate * config.time_budget / max(1, train_chars)
    return fitted, AutoFit(chosen, ref_speed, rate, epochs, point["name"], ref_cached and cached)
