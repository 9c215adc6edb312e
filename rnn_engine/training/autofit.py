"""Defaults fitted to the budget: the measured best model for this machine's speed and this data.

`benchmarks/auto_sweep.py` trained sets of GRU models and wrote what won at each point to
`auto_rule.json`. A language model's point is a corpus size and the characters the reference model
(2 x 512) sees in a time budget at a measured speed; a new run's probe measures how fast this machine
trains the reference shape at the precision that will run, and the point nearest in corpus size and
characters-in-budget (both on a log scale) gives the settings the user did not set. The name
classifier's budget is its epochs, which buy the same training on any machine: its point is the
number of training names and epochs, chosen by accuracy, or by balanced accuracy with --balance.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

from ..config import AUTO_FIELDS, RunConfig
from ..data.names import NamesData
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
    if config.preset:
        return f"the preset {config.preset} sets the model"
    if config.arch != "workbench":
        return f"the tutorial model {config.arch} has its own shape"
    if config.cell != "gru":
        return f"the auto sizes are measured for the GRU; {config.cell} keeps its defaults"
    if config.task == "names" and (config.epochs <= 0 or config.max_steps):
        return "auto fits the classifier's epochs, and this run is bounded by time or steps"
    if config.task == "charlm" and (config.time_budget <= 0 or config.epochs or config.max_steps):
        return "auto fits a time budget, and this run is bounded by epochs or steps"
    if config.task == "charlm" and ranks > 1:
        return "auto measures one process's speed; a torchrun job keeps the defaults"
    if set(AUTO_FIELDS) <= given:
        return "every setting auto chooses was given"
    return ""


@cache
def rule() -> dict[str, Any]:
    """The measured points (auto_rule.json)."""
    return json.loads(RULE_FILE.read_text(encoding="utf-8"))


def nearest(train_chars: int, reference_chars: float) -> dict[str, Any]:
    """The language model's point nearest to `train_chars` of corpus and `reference_chars` in the budget."""
    def distance(p: dict[str, Any]) -> float:
        return math.hypot(math.log(train_chars / p["train_chars"]),
                          math.log(reference_chars / p["reference_chars"]))

    return min((p for p in rule()["points"] if p.get("task", "charlm") == "charlm"), key=distance)


def nearest_names(train_items: int, epochs: int, balance: bool) -> dict[str, Any]:
    """The classifier's point nearest in training names and epochs, measured with the same --balance."""
    def distance(p: dict[str, Any]) -> float:
        return math.hypot(math.log(train_items / p["train_items"]), math.log(epochs / p["epochs"]))

    points = [p for p in rule()["points"] if p.get("task") == "names" and p["balance"] == balance]
    return min(points, key=distance)


def fit(config: RunConfig, data: CharCorpus | NamesData, given: set[str],
        cache_: probe.SpeedCache | None = None) -> tuple[RunConfig, dict[str, Any]]:
    """`config` with the settings not `given` fitted to the budget, and the record of the choice."""
    if isinstance(data, NamesData):
        point = nearest_names(max(1, len(data.train)), config.epochs, config.balance)
        chosen = _chosen(point, given)
        return replace(config, **chosen), {"settings": chosen, "point": point["name"],
                                           "metric": point["metric"], "epochs": config.epochs}
    fitted, why = fit_text(config, data, given, cache_)
    return fitted, why.to_dict()


def _chosen(point: dict[str, Any], given: set[str]) -> dict[str, Any]:
    return {k: v for k, v in point["best"].items() if k in AUTO_FIELDS and k not in given}


def fit_text(config: RunConfig, corpus: CharCorpus, given: set[str],
             cache_: probe.SpeedCache | None = None) -> tuple[RunConfig, AutoFit]:
    """The language model's settings not `given`, fitted to this machine, the corpus and the budget."""
    speeds = cache_ if cache_ is not None else probe.SpeedCache()
    reference = replace(config, **REFERENCE)
    ref_speed, ref_cached = probe.speed(reference, corpus, speeds)
    train_chars = len(corpus.train)
    point = nearest(train_chars, ref_speed * config.time_budget)
    chosen = _chosen(point, given)
    fitted = replace(config, **chosen)
    same_shape = (fitted.num_layers, fitted.hidden_size) == (reference.num_layers, reference.hidden_size)
    rate, cached = (ref_speed, ref_cached) if same_shape else probe.speed(fitted, corpus, speeds)
    epochs = rate * config.time_budget / max(1, train_chars)
    return fitted, AutoFit(chosen, ref_speed, rate, epochs, point["name"], ref_cached and cached)
