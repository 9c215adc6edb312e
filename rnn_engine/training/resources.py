"""What a training process uses, for its live.json heartbeat: CPU %, resident memory, GPU memory."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


class ResourceMeter:
    """CPU % (of one core, as top shows it), resident memory, and GPU memory and utilisation."""

    def __init__(self, device: Callable[[], str] = lambda: "cpu") -> None:
        self.device = device
        self._cpu = time.process_time()
        self._wall = time.monotonic()

    def __call__(self) -> dict[str, Any]:
        cpu, wall = time.process_time(), time.monotonic()
        percent = 100.0 * (cpu - self._cpu) / max(wall - self._wall, 1e-6)
        self._cpu, self._wall = cpu, wall
        out: dict[str, Any] = {"cpu_percent": round(percent, 1), "rss_bytes": _rss()}
        gpu = _gpu(self.device())
        if gpu:
            out["gpu"] = gpu
        return out


def _rss() -> int:
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # the peak: the best there is here
        return peak * (1 if os.uname().sysname == "Darwin" else 1024)


def _gpu(device: str) -> dict[str, Any] | None:
    """The run's CUDA device: its memory in use (all processes), this process's share, utilisation."""
    if not device.startswith("cuda"):
        return None
    try:
        import torch

        index = torch.device(device).index
        index = torch.cuda.current_device() if index is None else index
        free, total = torch.cuda.mem_get_info(index)
        out: dict[str, Any] = {"device": f"cuda:{index}", "memory_used": total - free,
                               "memory_total": total,
                               "memory_allocated": torch.cuda.memory_allocated(index)}
    except Exception:  # noqa: BLE001 - a monitor must never break the run it watches
        return None
    with contextlib.suppress(Exception):
        out["utilization"] = torch.cuda.utilization(index)  # needs NVML (pynvml) installed
    return out
