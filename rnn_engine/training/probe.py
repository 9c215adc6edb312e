"""How fast this machine trains a model shape: a few timed steps, cached per machine and shape."""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from ..config import RunConfig
from ..data.text import CharCorpus
from ..nn.fused import cache_root
from .trainer import Trainer

# seconds of timed steps per shape; the first steps (allocations, kernel warm-up) are not timed
PROBE_SECONDS = 1.5
WARMUP_STEPS = 2


def cache_path() -> Path:
    """Where measured speeds are kept, beside the built kernels."""
    return cache_root() / "speeds.json"


def machine_key(device: torch.device, precision: str) -> str:
    """What a speed depends on besides the model: the processor, threads, torch and precision."""
    if device.type == "cuda":
        where = torch.cuda.get_device_name(device)
    else:
        where = cpu_name() + f" x{torch.get_num_threads()} threads"
    return f"{where} | torch {torch.__version__} | {device.type} | {precision}"


def shape_key(config: RunConfig) -> str:
    c = config
    return f"{c.cell} {c.num_layers}x{c.hidden_size} B{c.batch_size} T{c.seq_len} {c.impl} {c.dtype}"


def cpu_name() -> str:
    """The processor's model name, as /proc/cpuinfo gives it (elsewhere what platform knows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


class SpeedCache:
    """Characters a second by machine and shape, read from and written to one JSON file."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or cache_path()
        try:
            table = json.loads(self.path.read_text())
        except (OSError, ValueError):
            table = None
        # no cache yet, or an unreadable one: measure again
        self.table: dict[str, dict[str, float]] = table if isinstance(table, dict) else {}

    def get(self, machine: str, shape: str) -> float | None:
        value = self.table.get(machine, {}).get(shape)
        return float(value) if isinstance(value, (int, float)) and value > 0 else None

    def put(self, machine: str, shape: str, chars_per_second: float) -> None:
        self.table.setdefault(machine, {})[shape] = round(chars_per_second, 1)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(f".{os.getpid()}.tmp")  # two runs starting at once write apart
            tmp.write_text(json.dumps(self.table, indent=1, sort_keys=True))
            tmp.replace(self.path)
        except OSError:
            pass  # a read-only home still trains; it measures again next time


def measure(config: RunConfig, corpus: CharCorpus, seconds: float = PROBE_SECONDS) -> dict[str, Any]:
    """Train `config`'s model on `corpus` for about `seconds` and time it: chars/s and how it ran.

    The steps are real training steps (forward, backward, clipping, the optimiser) at the precision
    and on the device the run would use; the model is thrown away afterwards.
    """
    probe = replace(config, time_budget=0.0, max_steps=0, epochs=0, eval_every=0)
    trainer = Trainer(probe, data=corpus, serve=False, diag_every=0)

    def batches() -> Any:
        while True:  # a corpus shorter than the probe is read again
            yield from trainer.task.epoch_batches(probe, 0, 0)

    feed = batches()
    for _ in range(WARMUP_STEPS):
        trainer.train_step(next(feed))
    _sync(trainer.device)
    start, steps = time.perf_counter(), 0
    while steps < 3 or time.perf_counter() - start < seconds:
        trainer.train_step(next(feed))
        steps += 1
    _sync(trainer.device)
    took = time.perf_counter() - start
    chars = steps * probe.batch_size * probe.seq_len
    return {"chars_per_second": chars / took if took > 0 else 0.0, "device": trainer.device,
            "precision": trainer.precision}


def speed(config: RunConfig, corpus: CharCorpus, cache: SpeedCache | None = None) -> tuple[float, bool]:
    """(chars/s of `config`'s shape here, whether it came from the cache), measuring when not cached."""
    from ..nn.precision import resolve as resolve_precision
    from .devices import resolve_device

    cache = cache if cache is not None else SpeedCache()
    device = resolve_device(config.device)
    machine = machine_key(device, resolve_precision(config, device)[0])
    known = cache.get(machine, shape_key(config))
    if known is not None:
        return known, True
    measured = measure(config, corpus)["chars_per_second"]
    if measured > 0:
        cache.put(machine, shape_key(config), measured)
    return measured, False


def remember(config: RunConfig, device: torch.device, precision: str, chars_per_second: float,
             cache: SpeedCache | None = None) -> None:
    """A finished run's own speed, over its whole training time: it replaces the probe's few seconds,
    which a busy moment can make wrong, as what the next run of this shape here expects."""
    if chars_per_second > 0:
        (cache or SpeedCache()).put(machine_key(device, precision), shape_key(config), chars_per_second)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
