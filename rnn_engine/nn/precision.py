"""bf16 mixed precision: which devices do it fast, what `auto` picks, and bf16 GEMMs for the models.

bf16 here means the GEMM inputs (weights, inputs, the hidden state as a GEMM operand) in bf16 and
everything else in fp32: master weights and optimizer state, gate arithmetic, the carried hidden
and cell state, softmax and loss, clipping and the gradient norms shown. A scratch model drops to
bf16 in three places only: `gemm` (input projections and the head), `low_matmul` (the recurrent
GEMM on the per-step path) and the fused CPU kernels (fused.py). torch.nn layers (--impl torch) run
under torch.autocast instead.
"""

from __future__ import annotations

import os
from contextlib import AbstractContextManager, nullcontext

import torch
import torch.nn.functional as F
from torch import Tensor

from ..config import RunConfig
from . import fused
from .fused import cpu_flags

BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # x86 instructions that make bf16 GEMMs fast
# 0: act as if no device had fast bf16; 1: as if the CPU had it (so a machine without AVX512_BF16
# makes the decisions, slowly, that one with it makes); unset: detect
BF16_ENV = "RNN_WORKBENCH_BF16"


def forced_bf16() -> bool | None:
    """True or False when RNN_WORKBENCH_BF16 forces the bf16 detection, None when it detects."""
    value = os.environ.get(BF16_ENV, "").strip()
    return {"0": False, "1": True}.get(value)


def fast_bf16(device: torch.device) -> tuple[bool, str]:
    """Whether `device` runs bf16 GEMMs faster than fp32, and what says so.

    RNN_WORKBENCH_BF16=0 turns the detection off (as on hardware without bf16); =1 makes the CPU
    count as one with bf16 instructions.
    """
    forced = forced_bf16()
    if forced is False:
        return False, f"bf16 detection turned off ({BF16_ENV}=0)"
    if forced and device.type == "cpu":
        return True, f"bf16 forced on ({BF16_ENV}=1), whatever this CPU has"
    if device.type == "cpu":
        found = sorted(set(BF16_FLAGS) & cpu_flags())
        if found:
            return True, f"this CPU has {' and '.join(f.upper() for f in found)}"
        return False, "this CPU has no AVX512_BF16 or AMX-BF16: its bf16 GEMMs are emulated, slower than fp32"
    if device.type == "cuda":
        major, minor = torch.cuda.get_device_capability(device)
        if major >= 8:
            return True, f"compute capability {major}.{minor} (tensor cores with bf16)"
        return False, f"compute capability {major}.{minor}: bf16 needs 8.0 or later to be fast"
    return False, f"no fast bf16 path on {device.type}"


def resolve(config: RunConfig, device: torch.device) -> tuple[str, str]:
    """("fp32" or "bf16", why) for a run's `precision` setting on `device`, every reason in one place.

    `auto` picks bf16 where it is built to pay and tested: the fused CPU kernels on a CPU with bf16
    instructions, once fused.py has checked their oneDNN bf16 GEMMs on it. On CUDA bf16 has not been
    measured here yet, so auto stays fp32 there and says that --precision bf16 tries it.
    """
    if config.dtype == "float64":
        return "fp32", "float64 parameters run without mixed precision"
    if config.precision == "fp32":
        return "fp32", "asked for"
    if config.arch != "workbench":
        return "fp32", f"the tutorial model {config.arch} runs in fp32"
    fast, why = fast_bf16(device)
    if config.precision == "bf16":
        if config.impl == "torch" and config.cell == "lstm" and device.type == "cpu" and not fast:
            # torch.nn.LSTM under CPU autocast needs oneDNN's bf16 LSTM, which such a CPU lacks
            return "fp32", "torch.nn.LSTM has no bf16 path on this CPU"
        return "bf16", "asked for" + ("" if fast else f"; note: {why}")
    if not fast:
        return "fp32", f"auto: {why}"
    if device.type != "cpu":
        return "fp32", (f"auto: {why}, but bf16 is not yet measured on {device.type} here; "
                        "--precision bf16 tries it")
    if config.impl != "scratch":
        return "fp32", (f"auto: {why}; auto picks bf16 for the fused scratch kernels, --precision bf16 "
                        "runs torch.nn under autocast")
    dnnl, reason = fused.dnnl_bf16()
    if not dnnl:
        if forced_bf16():
            # what a CPU with bf16 decides, reproduced on one without: its bf16 GEMMs are emulated
            return "bf16", f"auto: {why}; the fused kernels run ATen bf16 GEMMs ({reason})"
        return "fp32", f"auto: {why}, but the fused kernels cannot run bf16 on oneDNN here: {reason}"
    return "bf16", f"auto: {why}; the fused kernels run oneDNN bf16 GEMMs"


def gemm(x: Tensor, weight: Tensor, bias: Tensor | None, low: torch.dtype | None) -> Tensor:
    """x W^T + b: with `low` (bf16), x and W enter the GEMM as bf16 and the result returns to x's dtype."""
    if low is None:
        return F.linear(x, weight, bias)
    y = F.linear(x.to(low), weight.to(low)).to(x.dtype)
    return y if bias is None else y + bias


class _LowMatmul(torch.autograd.Function):
    """h @ w_t read in bf16, the product and both gradients returned in h's dtype.

    The recurrent weight is cast once per sequence (`w_low`) and used at every step. Left to autograd,
    its T per-step gradients would be summed in bf16 (as under torch.autocast, whose weight cache does
    the same); returning each step's gradient to w_t in fp32 makes that sum an fp32 one.
    """

    @staticmethod
    def forward(ctx, h: Tensor, w_t: Tensor, w_low: Tensor) -> Tensor:
        h_low = h.to(w_low.dtype)
        ctx.save_for_backward(h_low, w_low)
        return (h_low @ w_low).to(h.dtype)

    @staticmethod
    def backward(ctx, dy: Tensor):
        h_low, w_low = ctx.saved_tensors
        d = dy.to(w_low.dtype)
        dh = (d @ w_low.t()).to(dy.dtype) if ctx.needs_input_grad[0] else None
        dw = (h_low.t() @ d).to(dy.dtype) if ctx.needs_input_grad[1] else None
        return dh, dw, None


def low_matmul(h: Tensor, w_t: Tensor, w_low: Tensor) -> Tensor:
    """h @ w_t with both operands in bf16 (`w_low` is w_t's bf16 copy) and fp32 gradients for w_t."""
    return _LowMatmul.apply(h, w_t, w_low)


def autocast(precision: str, device: torch.device) -> AbstractContextManager:
    """torch.autocast to bf16 for torch.nn layers (--impl torch) in a bf16 run; nothing otherwise."""
    if precision != "bf16":
        return nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)
