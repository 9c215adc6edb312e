"""Devices: resolving a config's device name, and which devices this machine has."""

from __future__ import annotations

import torch

from ..errors import DeviceError


def resolve_device(name: str) -> torch.device:
    """torch.device for a config value; DeviceError when that device is not present."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceError(f"device {name!r}: CUDA is not available on this machine "
                              f"(torch {torch.__version__}); use --device cpu")
        index = int(name.split(":")[1]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            raise DeviceError(f"device {name!r}: only {torch.cuda.device_count()} CUDA device(s)")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise DeviceError("device 'mps': Apple MPS is not available on this machine; use --device cpu")
    return torch.device(name)


def available_devices() -> dict[str, str]:
    """Every device kind with '' when usable or the reason it is not."""
    out = {"cpu": ""}
    out["cuda"] = "" if torch.cuda.is_available() else "no CUDA device or CPU-only torch build"
    mps = getattr(torch.backends, "mps", None)
    out["mps"] = "" if mps and mps.is_available() else "Apple MPS not present"
    return out
