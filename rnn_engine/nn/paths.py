"""Which path a scratch layer runs on, and how a run's recurrence is described: decided here only.

A layer runs on one of three paths (torch.nn's own layers, `--impl torch`, are a fourth, chosen
by the model rather than per layer):

- `TRITON`: one custom op per layer on the Triton gate kernels (layer_op.py), on CUDA once they
  passed their self-check there (gpu_path.py), or anywhere when a layer asks for them
  (`Recurrent.kernels = "triton"`: `workbench check --kernels triton`, the tests, under Triton's
  interpreter on a CPU);
- `FUSED`: the fused C++ kernels (fused.py), float32 on the CPU;
- `PER_STEP`: the cells' equations a step at a time (steps.py), everywhere else: float64, LSTM
  projections, recorded states, or with the kernels turned off.

`Recurrent`, the Inside view's reader, the trainer and `workbench bench` all ask this module;
`scan_path` chooses among the same three for the scans of minGRU and minLSTM layers (minimal.py).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from . import fused, gpu_path

TRITON, FUSED, PER_STEP = "triton", "fused", "per-step"


def layer_path(layer: Any, x: Tensor, w_hh: Tensor, recording: bool = False) -> str:
    """The path a `Recurrent` layer with weights `w_hh` takes reading `x` (floats or token ids)."""
    if not layer.use_fused or recording or layer.proj_size:
        return PER_STEP
    if layer.kernels == "triton":
        return TRITON
    if w_hh.device.type == "cuda" and w_hh.dtype == torch.float32 and gpu_path.triton_ready(w_hh.device)[0]:
        return TRITON
    return FUSED if fused.applies(x, w_hh) else PER_STEP


def scan_path(layer: Any, weight: Tensor, recording: bool = False) -> str:
    """The path a minGRU/minLSTM layer's scan (minimal.py) takes, for a layer with weights `weight`.

    The Triton scan on CUDA wherever Triton imports (it has no gate GEMM to self-check: the tests
    compare it with the per-step path under the interpreter), the C++ scan for float32 on the CPU.
    """
    if not layer.use_fused or recording:
        return PER_STEP
    if layer.kernels == "triton":
        return TRITON
    if weight.device.type == "cuda" and weight.dtype == torch.float32 and gpu_path.triton_missing() is None:
        return TRITON
    return FUSED if fused.min_applies(weight) else PER_STEP


def describe(device: torch.device, dtype: torch.dtype, precision: str = "fp32", arch: str = "workbench",
             impl: str = "scratch", cell: str = "gru") -> str:
    """How a model's recurrence runs on `device`, for the activity log, the summary and the bench."""
    if cell in ("mingru", "minlstm") and arch == "workbench":
        scan = None
        if device.type == "cpu" and dtype == torch.float32 and fused.load():
            scan = "a fused C++ scan"
        elif device.type == "cuda" and dtype == torch.float32 and gpu_path.triton_missing() is None:
            scan = "a Triton scan (checked under Triton's interpreter, not yet timed on a GPU here)"
        gemm = "bf16" if precision == "bf16" else str(dtype).removeprefix("torch.")
        if scan is None:
            return f"{cell}: one {gemm} GEMM per layer over the window, then the scan a step at a time " \
                "in PyTorch ops"
        return f"{cell}: one {gemm} GEMM per layer over the window, then {scan} over time"
    if arch != "workbench":
        return f"{arch}: the tutorial's equations as per-step PyTorch ops"
    if impl == "torch":
        return f"torch.nn layers ({'cuDNN' if device.type == 'cuda' else device.type})"
    if device.type == "cpu" and dtype == torch.float32:
        return fused.status(torch.bfloat16 if precision == "bf16" else None)
    if device.type == "cuda" and dtype == torch.float32:
        return gpu_path.describe(device)
    return f"PyTorch ops ({device.type}, {str(dtype).removeprefix('torch.')})"
