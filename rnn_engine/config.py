"""Every hyperparameter in one dataclass: defaults, help text, parsing and field-named validation."""

from __future__ import annotations

import math
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from typing import Any

TASKS = ("charlm", "names")
CELLS = ("rnn", "gru", "lstm", "mingru", "minlstm")
MIN_CELLS = ("mingru", "minlstm")  # parallel in time (Feng et al. 2024): no torch.nn counterpart
NONLINEARITIES = ("tanh", "relu")
OPTIMIZERS = ("adam", "adamw", "rmsprop", "sgd")
SCHEDULES = ("cosine", "constant")
IMPLS = ("scratch", "torch")
PRECISIONS = ("auto", "fp32", "bf16")
# the workbench's models, or a classic tutorial's (model/tutorials.py; chosen by --preset)
ARCHS = ("workbench", "index-rnn", "tensor-rnn", "concat-rnn")
ARCH_TASKS = {"index-rnn": "charlm", "tensor-rnn": "charlm", "concat-rnn": "names"}
# presets.PRESETS holds what each one sets; "" is none
PRESET_NAMES = ("", "tutorial-index-rnn", "tutorial-tensor-rnn", "tutorial-concat-rnn", "tutorial-gru",
                "paper-mingru", "paper-minlstm")

# fields the training commands set themselves (--corpus, --data, --dedupe), not config flags
COMMAND_FIELDS = frozenset({"task", "data", "dedupe"})
# settings only one task reads: a command line for the other task leaves them out
TASK_ONLY = {"seq_len": "charlm", "sample_length": "charlm", "val_chars": "charlm", "carry_state": "charlm",
             "temperature": "charlm", "top_k": "charlm", "balance": "names", "bidirectional": "names"}
# characters of text one inspection reads (analysis.inside keeps the last ones): the Inside view and
# `workbench inspect` on a live run ask for at most this much, and the run protocol refuses more
MAX_INSPECT = 2000
# what a language model's run fits to its budget when the user leaves them (training/autofit.py)
AUTO_FIELDS = ("hidden_size", "num_layers", "dropout")
# hyperparameters the trainer can change between two batches without rebuilding anything
LIVE_FIELDS = frozenset({"lr", "clip", "temperature", "top_k", "weight_decay", "sample_length",
                         "eval_interval"})


def _f(default: Any, help: str, choices: tuple[str, ...] | None = None, **kw: Any) -> Any:
    return field(default=default, metadata={"help": help, "choices": choices, **kw})


class ConfigError(ValueError):
    """Invalid hyperparameters; `errors` maps each bad field to its message."""

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))


@dataclass(frozen=True)
class RunConfig:
    """A training run: task, data, model shape, optimisation, sampling and budget."""

    task: str = _f("charlm", "what to train: a character language model or the name classifier", TASKS)
    data: str = _f("", "corpus file (charlm) or directory of <Language>.txt files (names)")
    preset: str = _f("", "a classic tutorial's or a paper's model and training (workbench presets lists "
                     "them); the other settings given beside it win", PRESET_NAMES)
    cell: str = _f("gru", "recurrent cell", CELLS)
    arch: str = _f("workbench", "model family: the workbench's (cell, layers) or a classic tutorial's", ARCHS)
    nonlinearity: str = _f("tanh", "activation of the vanilla RNN cell", NONLINEARITIES)
    hidden_size: int = _f(512, "hidden units per layer")
    num_layers: int = _f(1, "stacked recurrent layers")
    dropout: float = _f(0.0, "dropout between layers and before the head, in [0, 1)")
    seq_len: int = _f(100, "truncated-BPTT window in characters (charlm)")
    batch_size: int = _f(64, "parallel streams (charlm) or names per batch")
    optimizer: str = _f("adam", "optimiser", OPTIMIZERS)
    lr: float = _f(3e-3, "learning rate")
    lr_schedule: str = _f("cosine", "cosine decays lr to 10% over the budget", SCHEDULES)
    weight_decay: float = _f(0.0, "weight decay (L2 for sgd/rmsprop/adam, decoupled for adamw)")
    clip: float = _f(5.0, "clip the gradient norm to this value; 0 turns clipping off")
    epochs: int = _f(0, "passes over the training data; 0 means until the time budget")
    time_budget: float = _f(300.0, "seconds of training; 0 means until the epochs are done")
    max_steps: int = _f(0, "stop after this many optimizer steps; 0 means no limit")
    seed: int = _f(1234, "random seed for initialisation, batching and sampling")
    device: str = _f("auto", "cpu, cuda, cuda:N, mps or auto")
    temperature: float = _f(0.8, "sampling temperature for the generated text")
    top_k: int = _f(0, "sample from the k likeliest characters; 0 means all")
    sample_length: int = _f(300, "characters generated after each epoch")
    eval_every: int = _f(0, "also measure validation loss every N steps; 0 means per epoch only")
    eval_interval: float = _f(60.0, "also evaluate, sample (LM) and save after this many seconds "
                              "without an evaluation; 0 means per epoch only")
    val_chars: int = _f(200_000, "characters of the validation split a routine evaluation reads, in "
                        "fixed windows spread over it; 0 reads it all (charlm)")
    dedupe: bool = _f(False, "drop repeated (name, language) pairs before splitting (names)")
    balance: bool = _f(False, "weight each name's loss by the inverse frequency of its language, for "
                       "balanced accuracy (names)")
    dtype: str = _f("float32", "parameter dtype", ("float32", "float64"))
    precision: str = _f("auto", "bf16: GEMM inputs in bf16 with fp32 accumulation, the rest fp32; auto picks "
                        "bf16 for the fused kernels on a CPU with AVX512_BF16 or AMX, fp32 elsewhere",
                        PRECISIONS)
    impl: str = _f("scratch", "recurrent layers: the hand-written ones, or torch.nn's with the same "
                   "weights (cuDNN on CUDA, much faster there)", IMPLS)
    bidirectional: bool = _f(False, "read each name both ways, forward and backward (names)")
    carry_state: bool = _f(True, "carry the hidden state from one window to the next (charlm); no: every "
                           "batch starts from zeros, as the classic tutorials did")

    def validate(self) -> dict[str, str]:
        """Errors by field name; empty when the config can run."""
        e: dict[str, str] = {}
        for f in fields(self):
            choices = f.metadata.get("choices")
            value = getattr(self, f.name)
            if choices and value not in choices:
                e[f.name] = f"must be one of {', '.join(choices)}"
            elif isinstance(value, float) and not math.isfinite(value):
                e[f.name] = "must be a finite number"

        def check(name: str, ok: bool, msg: str) -> None:
            if name not in e and not ok:
                e[name] = msg

        check("hidden_size", 1 <= self.hidden_size <= 8192, "must be between 1 and 8192")
        check("num_layers", 1 <= self.num_layers <= 16, "must be between 1 and 16")
        check("dropout", 0.0 <= self.dropout < 1.0, "must be in [0, 1)")
        check("seq_len", 1 <= self.seq_len <= 100_000, "must be between 1 and 100000")
        check("batch_size", 1 <= self.batch_size <= 65_536, "must be between 1 and 65536")
        check("lr", 0.0 < self.lr <= 10.0, "must be > 0 and at most 10")
        check("weight_decay", 0.0 <= self.weight_decay <= 1.0, "must be in [0, 1]")
        check("clip", self.clip >= 0.0, "must be >= 0 (0 turns clipping off)")
        check("epochs", self.epochs >= 0, "must be >= 0")
        check("time_budget", self.time_budget >= 0.0, "must be >= 0 seconds")
        check("max_steps", self.max_steps >= 0, "must be >= 0 (0 means no limit)")
        check("seed", 0 <= self.seed < 2**63, "must be a non-negative integer")
        check("temperature", 0.0 < self.temperature <= 100.0, "must be > 0")
        check("top_k", self.top_k >= 0, "must be >= 0")
        check("sample_length", 0 <= self.sample_length <= 100_000, "must be between 0 and 100000")
        check("eval_every", self.eval_every >= 0, "must be >= 0")
        check("eval_interval", self.eval_interval >= 0.0, "must be >= 0 seconds (0 turns it off)")
        check("val_chars", self.val_chars >= 0, "must be >= 0 (0 reads the whole validation split)")
        check("precision", not (self.precision == "bf16" and self.dtype == "float64"),
              "bf16 mixes with float32 parameters, not float64")
        check("bidirectional", not (self.bidirectional and self.task == "charlm"),
              "a language model predicts the next character from the ones before: it reads one way")
        if self.cell in MIN_CELLS and self.arch == "workbench":
            check("impl", self.impl == "scratch", f"torch.nn has no {self.cell}: it is scratch code only")
            check("bidirectional", not self.bidirectional, f"the {self.cell} layers here read one way")
        if self.arch in ARCH_TASKS:
            kind = "a language model" if ARCH_TASKS[self.arch] == "charlm" else "a classifier"
            check("arch", ARCH_TASKS[self.arch] == self.task, f"{self.arch} is {kind}")
            check("impl", self.impl == "scratch", f"the tutorial model {self.arch} is scratch code only")
            check("bidirectional", not self.bidirectional, f"the tutorial model {self.arch} reads one way")
        dev = self.device
        check("device", dev in ("auto", "cpu", "cuda", "mps") or
              (dev.startswith("cuda:") and dev[5:].isdigit()), "must be cpu, cuda, cuda:N, mps or auto")
        if "hidden_size" not in e and "batch_size" not in e and "seq_len" not in e:
            # activations kept for backward: about 8 tensors of B x T x H per layer, 4 bytes each
            t = self.seq_len if self.task == "charlm" else 32
            need = 8 * self.batch_size * t * self.hidden_size * self.num_layers * 4
            check("batch_size", need <= 16 * 2**30,
                  f"batch_size x seq_len x hidden_size needs ~{need / 2**30:.0f} GiB of activations")
        return e

    def checked(self) -> RunConfig:
        """Self, or ConfigError naming every bad field."""
        errors = self.validate()
        if errors:
            raise ConfigError(errors)
        return self

    def updated(self, **changes: Any) -> RunConfig:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    @classmethod
    def from_strings(cls, values: dict[str, str], base: RunConfig | None = None) -> RunConfig:
        """Parse text from a form or command line; raises ConfigError naming every bad field."""
        base = base or cls()
        parsed: dict[str, Any] = {}
        errors: dict[str, str] = {}
        for f in fields(cls):
            if f.name not in values:
                continue
            try:
                parsed[f.name] = parse_value(f.type, values[f.name])
            except ValueError as exc:
                errors[f.name] = str(exc)
        if errors:
            raise ConfigError(errors)
        return replace(base, **parsed).checked()


# The fixed defaults, which --no-auto keeps and auto starts from (training/autofit.py fits the size
# and dropout to the machine's speed, the corpus and the budget). The LM: 2 x 512 GRU with dropout
# 0.3 reached 1.381 nats/char on the bundled plays in the default 5 minutes on 2 cores; 1 x 512
# without dropout runs 3x faster there but overfits the 1 MB corpus after ~6 epochs (best 1.453). The
# auto sweep (docs/auto.md) found 2 x 768 with dropout 0.1 better on that machine (1.352 against
# 1.380), 2 x 256 five times slower, dropout 0.5 on a 300 K slice, 2 x 128 on the sonnets; the name
# classifier's default was as good as any by accuracy, and 2 x 512 with dropout 0.5 better by
# balanced accuracy with --balance.
TASK_DEFAULTS: dict[str, dict[str, Any]] = {
    "charlm": {"num_layers": 2, "dropout": 0.3},
    "names": {"hidden_size": 256, "num_layers": 2, "batch_size": 64, "lr": 3e-3, "epochs": 8,
              "time_budget": 0.0, "dropout": 0.3},
}


def check_world(config: RunConfig, world: int) -> None:
    """ConfigError when a language model's streams cannot be shared evenly by `world` ranks."""
    if config.task == "charlm" and config.batch_size % world:
        raise ConfigError({"batch_size": f"{config.batch_size} streams cannot be split evenly over "
                                         f"{world} ranks; use a multiple of {world}"})


# What a cell's language model needs that the task's defaults do not give: the parallel cells' residual
# model learns far slower with dropout on its residual stream (docs/measured.md: 2-minute runs on the
# plays, validation 1.448 at dropout 0 against 1.513 at 0.1 and 1.648 at 0.3; it underfits at 0.3)
CELL_DEFAULTS: dict[str, dict[str, dict[str, Any]]] = {
    "charlm": {"mingru": {"dropout": 0.0}, "minlstm": {"dropout": 0.0}},
}


def cell_defaults(task: str, cell: str) -> dict[str, Any]:
    """The settings `cell` changes from the task's defaults (empty for most cells)."""
    return CELL_DEFAULTS.get(task, {}).get(cell, {})


def default_config(task: str = "charlm", **overrides: Any) -> RunConfig:
    """The defaults for a task (and its cell's, when `cell` is given), overrides applied (not validated)."""
    cell = overrides.get("cell", RunConfig.cell)
    return replace(RunConfig(task=task), **{**TASK_DEFAULTS.get(task, {}), **cell_defaults(task, cell),
                                             **overrides})


def describe_auto(auto: dict[str, Any]) -> str:
    """One line: what auto chose, from what speed and measured point, and what the budget buys."""
    if "off" in auto:
        return f"auto: off ({auto['off']})"
    names = {"num_layers": "layers", "hidden_size": "hidden", "dropout": "dropout"}
    chosen = ", ".join(f"{names.get(k, k)} {v}" for k, v in auto["settings"].items()) or "nothing"
    if "metric" in auto:  # the classifier: its budget is epochs, the same on any machine
        return (f"auto: {chosen} (the best {auto['metric'].replace('_', ' ')} measured for "
                f"{auto['epochs']} epochs; nearest measured point {auto['point']}; --no-auto for the fixed "
                "defaults)")
    probe_word = "cached probe" if auto.get("cached_probe") else "probe"
    return (f"auto: {chosen} ({probe_word}: 2x512 trains {auto['reference_chars_per_second']:,} chars/s "
            f"here, this model {auto['chars_per_second']:,}, ~{auto['expected_epochs']:.1f} epochs in the "
            f"budget; nearest measured point {auto['point']}; --no-auto for the fixed defaults)")


def parse_value(kind: Any, text: str) -> Any:
    """Turn a field's text into its type, with a message a person can act on."""
    kind = getattr(kind, "__name__", kind)
    text = str(text).strip()
    if kind == "int":
        try:
            return int(text.replace("_", ""))
        except ValueError:
            raise ValueError(f"{text!r} is not a whole number") from None
    if kind == "float":
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a number") from None
        if not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value
    if kind == "bool":
        low = text.lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off", ""):
            return False
        raise ValueError(f"{text!r} is not yes/no")
    return text


def field_info() -> list[tuple[str, str, Any, str, tuple[str, ...] | None]]:
    """(name, type name, default, help, choices) for each field, for CLI flags and UI forms."""
    out = []
    for f in fields(RunConfig):
        default = f.default if f.default is not MISSING else None
        kind = getattr(f.type, "__name__", f.type)
        out.append((f.name, kind, default, f.metadata["help"], f.metadata.get("choices")))
    return out
