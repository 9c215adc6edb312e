"""Small immutable events the trainer reports, named in the past tense, and their JSON lines."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True)
class Event:
    """Base of every trainer event; `to_json` gives one line of runs/<id>/events.jsonl."""

    logged: ClassVar[bool] = True  # False: an answer for one asker only, kept out of events.jsonl

    def to_dict(self) -> dict[str, Any]:
        return {"event": type(self).__name__, **asdict(self)}

    def to_json(self) -> str:
        return json.dumps(json_safe(self.to_dict()), separators=(",", ":"))


def json_safe(value: Any) -> Any:
    """`value` with NaN and infinities as strings: JSON has no way to write them."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


@dataclass(frozen=True)
class RunStarted(Event):
    run_id: str
    run_dir: str
    task: str
    config: dict
    device: str
    parameters: int
    train_items: int
    val_items: int
    resumed_from_step: int = 0
    recurrent_path: str = ""  # on the CPU: fused kernels or plain PyTorch ops, and why
    world_size: int = 1  # ranks training together (torchrun)
    threads: int = 0  # CPU threads of each rank
    origin: str = ""  # a resumed run: where its settings came from (kept, changed live, given)
    auto: dict = field(default_factory=dict)  # what was fitted to the budget and why, or why not ("off")


@dataclass(frozen=True)
class StepFinished(Event):
    step: int
    epoch: int  # the epoch in progress, from 1
    loss: float
    grad_norm: float  # total norm before clipping
    clipped_norm: float  # after clipping
    lr: float
    items_per_s: float  # characters/s (charlm) or names/s (names), smoothed
    elapsed: float
    progress: float  # 0..1 of the epoch or time budget, whichever ends the run
    eta: float  # seconds left, or -1 when unknown
    span: int = 1  # in events.jsonl, steps this record stands for; `loss` is then their mean
    world_size: int = 1
    rank_items_per_s: list = field(default_factory=list)  # per rank when world_size > 1; the sum above


@dataclass(frozen=True)
class Evaluated(Event):
    step: int
    epoch: int
    val_loss: float
    val_accuracy: float | None = None  # names only
    balanced_accuracy: float | None = None
    items: int = 0  # characters or names evaluated
    full: bool = False  # the whole validation split, not the routine subset
    confusion: list = field(default_factory=list)  # names: rows = true class, columns = predicted
    labels: list = field(default_factory=list)


@dataclass(frozen=True)
class EvaluationProgress(Event):
    step: int
    done: int  # characters or names evaluated so far
    total: int
    full: bool = False


@dataclass(frozen=True)
class EpochFinished(Event):
    epoch: int
    step: int
    train_loss: float
    val_loss: float
    sample: str = ""
    temperature: float = 0.0
    val_accuracy: float | None = None
    balanced_accuracy: float | None = None
    confusion: list = field(default_factory=list)  # names: rows = true class, columns = predicted
    labels: list = field(default_factory=list)


@dataclass(frozen=True)
class GradientsMeasured(Event):
    step: int
    total: float
    per_param: dict
    per_layer: dict
    per_timestep: list  # ‖∂L_T/∂h_t‖ for t = 1..T of the top layer


@dataclass(frozen=True)
class RunPaused(Event):
    step: int
    reason: str


@dataclass(frozen=True)
class RunResumed(Event):
    step: int


@dataclass(frozen=True)
class HyperparametersApplied(Event):
    step: int
    changes: dict


@dataclass(frozen=True)
class HyperparametersRejected(Event):
    step: int
    errors: dict  # field → why; the run goes on with its old values


@dataclass(frozen=True)
class DeviceSwitched(Event):
    step: int
    device: str


@dataclass(frozen=True)
class CheckpointSaved(Event):
    step: int
    path: str
    reason: str = ""


@dataclass(frozen=True)
class Sampled(Event):
    step: int
    text: str
    temperature: float
    prime: str = ""
    request: str = ""  # who asked, for the control endpoint to route the answer; "" if nobody
    reason: str = ""  # "asked"; "periodic" on the evaluation cadence; "final" at the end of a run without one


@dataclass(frozen=True)
class Classified(Event):
    step: int
    names: list
    results: list  # per name: [(language, probability), ...] likeliest first
    request: str = ""


@dataclass(frozen=True)
class Checked(Event):
    """The model against torch.nn with its weights on a batch of its data (analysis.check.check_model)."""

    step: int
    report: dict
    request: str = ""


@dataclass(frozen=True)
class Inspected(Event):
    """What the Inside view shows for a text (inside.inspection); large, so only its asker gets it."""

    logged: ClassVar[bool] = False
    step: int
    result: dict
    request: str = ""


@dataclass(frozen=True)
class ControlEndpointFailed(Event):
    """The thread serving the control socket ended while the run was alive."""

    step: int
    error: str
    failures: int  # how many times it has failed in this process
    restarted: bool  # False once the restarts are used up: the run trains on, unsteerable


@dataclass(frozen=True)
class RunFailed(Event):
    step: int
    error: str


@dataclass(frozen=True)
class RunFinished(Event):
    step: int
    reason: str  # "completed", "stopped" (also "interrupted", "nan", ...: see final_state) or "pruned"
    summary: dict


def final_state(reason: str) -> str:
    """The state a run that ended for `reason` is left in (live.json, `workbench runs`, the app)."""
    return {"completed": "finished", "pruned": "pruned"}.get(reason, "stopped")


Sink = Callable[[Event], None]

EVENT_TYPES: dict[str, type[Event]] = {cls.__name__: cls for cls in Event.__subclasses__()}


def event_from_dict(record: dict[str, Any]) -> Event | None:
    """The event a JSON line describes, or None for a kind this version does not know.

    Fields added by later versions are ignored and missing optional ones take their defaults,
    so logs written by other versions still open.
    """
    cls = EVENT_TYPES.get(record.get("event", ""))
    if cls is None:
        return None
    names = cls.__dataclass_fields__
    values = {k: _number(v) for k, v in record.items() if k in names}
    try:
        return cls(**values)
    except TypeError:  # a required field is missing: not an event we can show
        return None


def _number(value: Any) -> Any:
    # the inverse of json_safe for the values a float field can hold
    if value in ("nan", "inf", "-inf"):
        return float(value)
    return value
