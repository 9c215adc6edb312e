"""Which kernels the scratch layers use on a GPU, and why: Triton after a self-check, else per-step ops.

On CUDA a layer runs as one custom op on the Triton gate kernels (layer_op.py) once a small layer
of each cell has matched the per-step path (steps.py) on that device (outputs and gradients); when
Triton is missing, the self-check fails or RNN_WORKBENCH_KERNELS=0, the layers keep the per-step
path, which is correct but several times slower than cuDNN (`--impl torch`). The reason is kept
and shown wherever the run's recurrence is described.

TF32 is off for fp32 work on CUDA, for the kernels' GEMMs and the reference alike (`ieee_fp32`):
fp32 here means IEEE fp32, so a comparison between paths compares the same arithmetic.

Triton's interpreter runs the kernels on CPU tensors; it must be chosen before Triton is first
imported (`use_interpreter`). It proves the kernels' logic, not their speed on a GPU.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator

import torch

FALLBACK_ADVICE = "`--impl torch` (cuDNN) is the fast choice on this GPU"

_lock = threading.Lock()
_checked: dict[str, tuple[bool, str]] = {}


def use_interpreter() -> str | None:
    """Have Triton run kernels on the CPU (TRITON_INTERPRET=1); None if done, else why it cannot be."""
    if os.environ.get("TRITON_INTERPRET") == "1":
        return None
    if "triton" in sys.modules:
        return "Triton was imported before TRITON_INTERPRET=1 was set; set it in the environment"
    os.environ["TRITON_INTERPRET"] = "1"
    return None


def interpreted() -> bool:
    return os.environ.get("TRITON_INTERPRET") == "1"


def triton_missing() -> str | None:
    """Why the Triton kernels cannot be imported here, or None."""
    try:
        from . import triton_gates  # noqa: F401
    except ImportError as exc:
        return f"Triton is not installed ({exc})"
    except Exception as exc:  # noqa: BLE001 - a broken install names itself
        return f"Triton failed to load ({type(exc).__name__}: {exc})"
    return None


@contextlib.contextmanager
def ieee_fp32() -> Iterator[None]:
    """fp32 GEMMs and convolutions on CUDA without TF32, restored afterwards."""
    matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul, cudnn


def set_fp32_policy() -> None:
    """fp32 training on CUDA is IEEE fp32 for every path (torch's cuDNN default would use TF32)."""
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False


def self_check(device: torch.device | str, tolerance: float = 1e-4) -> str | None:
    """A small layer of each cell through the Triton op against the per-step path on `device`.

    Padded lengths, a given state; outputs, the last state and every gradient (of the input
    projection, W_hh, GRU's hidden bias and the initial state) compared. Returns None when all
    agree within `tolerance`, else what differed (or what failed).
    """
    from .cells import GATES
    from .layer_op import run_layer
    from .steps import per_step_layer

    device = torch.device(device)
    gen = torch.Generator().manual_seed(0)
    steps, batch, hidden = 6, 3, 8
    try:
        with ieee_fp32():
            for mode in ("rnn", "gru", "lstm"):
                width = GATES[mode] * hidden
                shapes = [(steps, batch, width), (width, hidden), (width,), (batch, hidden), (batch, hidden)]
                made = [torch.randn(*shape, generator=gen) for shape in shapes]
                lengths = torch.tensor([6, 4, 1], device=device)
                mask = (torch.arange(steps, device=device)[:, None] < lengths[None, :]).unsqueeze(-1)
                results = []
                for kernels in (False, True):
                    gi, w_hh, b_hh, h0, c0 = (t.to(device).mul(0.5).requires_grad_() for t in made)
                    b = b_hh if mode == "gru" else None
                    c = c0 if mode == "lstm" else None
                    if kernels:  # the op takes GRU's b_hr and b_hz folded into gi, as fused.run_layer does
                        folded = gi if b is None else gi + torch.cat([b[: 2 * hidden], b.new_zeros(hidden)])
                        out, h, _ = run_layer(mode, folded, w_hh, b, h0, c, lengths, False, None)
                        out = out * mask
                    else:
                        out, h, _ = per_step_layer(mode, gi, h0, c, w_hh, b, mask=mask)
                    (out.square().sum() + h.sum()).backward()
                    grads = [torch.zeros_like(t) if t.grad is None else t.grad for t in (gi, w_hh, b_hh, h0)]
                    results.append([out, h, *grads])
                worst = max(float((a - b).detach().abs().max()) for a, b in zip(*results))
                if not worst <= tolerance:
                    return f"{mode}: the Triton kernels differ from the per-step path by {worst:.2e}"
    except Exception as exc:  # noqa: BLE001 - any failure means: do not use these kernels
        return f"the Triton kernels failed ({type(exc).__name__}: {str(exc)[:200]})"
    return None


def triton_ready(device: torch.device) -> tuple[bool, str]:
    """(use the Triton kernels on `device`, the reason), decided once per device and process."""
    if device.type == "cuda" and device.index is None and torch.cuda.is_available():
        device = torch.device("cuda", torch.cuda.current_device())  # "cuda" and "cuda:0" are one GPU
    key = str(device)
    with _lock:
        if key in _checked:
            return _checked[key]
        if device.type != "cuda":
            verdict = (False, f"the Triton path is for CUDA devices, not {device.type}")
        elif os.environ.get("RNN_WORKBENCH_KERNELS") == "0":
            verdict = (False, "RNN_WORKBENCH_KERNELS=0 turns the kernels off")
        elif (missing := triton_missing()) is not None:
            verdict = (False, missing)
        elif (failed := self_check(device)) is not None:
            verdict = (False, f"self-check failed: {failed}")
        else:
            verdict = (True, "Triton gate kernels, self-checked against the per-step path")
        _checked[key] = verdict
        return verdict


def describe(device: torch.device) -> str:
    """How the scratch layers run on a device other than the CPU, for the activity log and the summary."""
    if device.type != "cuda":
        return f"per-step PyTorch ops ({device.type})"
    ok, why = triton_ready(device)
    if ok:
        return f"one op per layer on {why}; TF32 off"
    return f"per-step PyTorch ops ({why}); {FALLBACK_ADVICE}"


def fallback_notice(device: torch.device) -> str:
    """'' when the layers run on the Triton kernels on `device`, else what they run and why."""
    ok, why = triton_ready(device)
    return "" if ok else f"the scratch layers run per-step ops on {device} ({why}): {FALLBACK_ADVICE}"


def forget() -> None:
    """Drop the decisions made so far (tests force a fresh self-check)."""
    with _lock:
        _checked.clear()
