"""Fused CPU kernels for a recurrent layer: built from kernels/fused_rnn.cpp on first use, else absent.

The kernels run a whole layer over a sequence in C++ (one GEMM and one vectorised pass of gate
arithmetic per step, forward and backward) and are wrapped here as autograd Functions. They are
compiled with the system C++ compiler against the installed torch the first time they are needed
(about 15 s, said on stderr or through the `rnn_engine.nn.fused` logger where logging is set up)
and cached under ~/.cache/rnn-workbench (or $RNN_WORKBENCH_CACHE). Where no compiler
is found or the build fails, `status()` says why and the engine keeps its pure PyTorch path, which
computes the same numbers. RNN_WORKBENCH_KERNELS=0 turns them off.

With `low=torch.bfloat16` a layer's GEMMs read bf16 copies of W_hh and of their other operand and
accumulate in float32; states, gates and every gradient returned stay float32 (precision.py).
"""

from __future__ import annotations

import hashlib
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor

SOURCE = Path(__file__).resolve().parent / "kernels" / "fused_rnn.cpp"
log = logging.getLogger(__name__)
# below this many steps the per-call weight packing costs more than it saves
PACK_MIN_STEPS = 4

_lock = threading.Lock()
_state: dict[str, object] = {"loaded": None, "why": "not built yet", "dnnl": False, "dnnl_bf16": False,
                             "bf16_why": ""}


def cache_root() -> Path:
    """Where the workbench keeps what it builds or measures once per machine: $RNN_WORKBENCH_CACHE."""
    return Path(os.environ.get("RNN_WORKBENCH_CACHE") or Path.home() / ".cache" / "rnn-workbench")


def cache_dir() -> Path:
    return cache_root() / "kernels"


def _flags_line() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return line
    except OSError:
        pass
    return ""


def cpu_flags() -> set[str]:
    """The CPU's feature flags (avx2, avx512_bf16, ...) where the system lists them; else empty."""
    line = _flags_line()
    return set(line.split(":", 1)[1].split()) if line else set()


def _cpu_signature() -> str:
    # -march=native code must not be reused on another CPU that shares the cache directory
    return _flags_line() or platform.processor() or platform.machine()


def _compile_command(source: Path, target: Path) -> list[str]:
    # a plain compiler call: torch.utils.cpp_extension would add ninja, setuptools and Python headers
    torch_dir = Path(torch.__file__).resolve().parent
    abi = int(torch.compiled_with_cxx11_abi())
    # -fopenmp links libgomp, which resolves to the copy torch has already loaded: one thread pool
    return [os.environ.get("CXX", "g++"), "-O3", "-march=native", "-fopenmp", "-shared", "-fPIC",
            "-std=c++20", f"-D_GLIBCXX_USE_CXX11_ABI={abi}", "-w", f"-I{torch_dir / 'include'}",
            str(source), f"-L{torch_dir / 'lib'}", "-lc10", "-ltorch_cpu", f"-Wl,-rpath,{torch_dir / 'lib'}",
            "-o", str(target)]


def _target() -> Path:
    """Where the library for this source, torch, compiler flags and CPU is cached."""
    parts = [SOURCE.read_bytes(), torch.__version__.encode(), _cpu_signature().encode(),
             " ".join(_compile_command(SOURCE, Path("x"))).encode()]
    key = hashlib.sha256(b"\0".join(parts))
    return cache_dir() / f"fused_rnn-{key.hexdigest()[:16]}.so"


def needs_build() -> bool:
    """True when the first use will compile the kernels (some seconds) rather than load them."""
    return (_state["loaded"] is None and os.environ.get("RNN_WORKBENCH_KERNELS", "1") != "0"
            and not _target().exists())


def _build() -> Path:
    """Compile (or find in the cache) the kernel library; raise RuntimeError saying why not."""
    compiler = os.environ.get("CXX", "g++")
    if not sys.platform.startswith("linux"):
        raise RuntimeError(f"the kernels are built on Linux only, not {sys.platform}")
    target = _target()
    if target.exists():
        return target
    if shutil.which(compiler) is None:
        raise RuntimeError(f"no C++ compiler ({compiler}) on PATH")
    started = time.monotonic()
    _tell(f"building the fused CPU kernels with {compiler} (once per torch version and CPU, about 15 s)…")
    target.parent.mkdir(parents=True, exist_ok=True)
    # build beside the target and rename, so a concurrent or interrupted build never leaves half a file
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=target.parent)
    os.close(fd)
    try:
        done = subprocess.run(_compile_command(SOURCE, Path(tmp)), capture_output=True, text=True,
                              timeout=600)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            raise RuntimeError(f"{compiler} failed: " + " / ".join(tail))
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    _tell(f"built the fused CPU kernels in {time.monotonic() - started:.1f} s; cached in {target.parent}")
    return target


def _tell(message: str) -> None:
    """Say what takes a while: through logging where the program has set it up, else on stderr."""
    if log.hasHandlers():
        log.info(message)
    else:
        print(f"rnn_engine: {message}", file=sys.stderr, flush=True)


def _bf16_check(reorder: Callable[[Tensor, int], Tensor | None] | None = None) -> str:
    """'' where oneDNN's bf16 GEMMs, as the kernels issue them, agree with at::mm's; else why not.

    oneDNN runs bf16 only on CPUs with AVX512BW/VL/DQ or AVX-NE-CONVERT. Where it says it does, one
    small GRU layer, forward and backward, runs both ways before any run relies on it. `reorder`
    packs a weight for oneDNN (oneDNN's own by default; returning None sends that GEMM to at::mm).
    """
    reorder = reorder or torch.ops.mkldnn._reorder_linear_weight
    try:
        supported = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a torch built without this query
        supported = False
    if not supported:
        return "oneDNN has no bf16 on this CPU"
    ops = torch.ops.rnn_workbench
    gen = torch.Generator().manual_seed(0)
    steps, batch, hidden = 2 * PACK_MIN_STEPS, 4, 16
    gi = torch.randn(steps, batch, 3 * hidden, generator=gen)
    w = (torch.randn(3 * hidden, hidden, generator=gen) / 4).to(torch.bfloat16)
    h0, b_hn = torch.randn(batch, hidden, generator=gen), torch.zeros(hidden)
    dout = torch.randn(steps, batch, hidden, generator=gen)
    results = []
    try:
        for packed in (True, False):
            w_pack = reorder(w, batch) if packed else None
            wt_pack = reorder(w.t().contiguous(), batch) if packed else None
            states, saved = ops.gru_forward(gi, None, w, w_pack, b_hn, h0, None)
            _, dw, _, dh0 = ops.gru_backward(dout, saved, states, w, wt_pack, None, None, 0)
            results.append((states, dw, dh0))
    except RuntimeError as exc:
        return f"oneDNN's bf16 GEMMs failed here ({str(exc).splitlines()[0]})"
    return _disagreement(*results)


def _disagreement(packed: tuple[Tensor, ...], plain: tuple[Tensor, ...]) -> str:
    """'' when oneDNN's (states, dW_hh, dh0) match at::mm's to bf16's tolerance, else which did not."""
    for name, a, b in zip(("states", "dW_hh", "dh0"), packed, plain):
        if not torch.allclose(a, b, rtol=2e-2, atol=2e-2 * float(b.abs().max())):
            return f"oneDNN's bf16 {name} disagreed with at::mm's by {float((a - b).abs().max()):.3g}"
    return ""


def load() -> bool:
    """Build and load the kernels once per process; True when they can be used."""
    with _lock:
        if _state["loaded"] is not None:
            return bool(_state["loaded"])
        if os.environ.get("RNN_WORKBENCH_KERNELS", "1") == "0":
            _state.update(loaded=False, why="turned off by RNN_WORKBENCH_KERNELS=0")
            return False
        try:
            torch.ops.load_library(str(_build()))
            dnnl = bool(torch.ops.rnn_workbench.has_dnnl())
            bf16_why = _bf16_check() if dnnl else "torch has no oneDNN"
            _state.update(loaded=True, why="", dnnl=dnnl, dnnl_bf16=not bf16_why, bf16_why=bf16_why)
        except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
            _state.update(loaded=False, why=str(exc))
        return bool(_state["loaded"])


def status(low: torch.dtype | None = None) -> str:
    """One line for logs and the benchmark: which recurrent path runs on the CPU, and why."""
    if not load():
        return f"PyTorch ops (fused kernels unavailable: {_state['why']})"
    if low is not None:
        return "fused C++ kernels, " + ("oneDNN bf16 GEMMs" if _state["dnnl_bf16"]
                                        else f"ATen bf16 GEMMs ({_state['bf16_why']})")
    return "fused C++ kernels, " + ("oneDNN GEMMs" if _state["dnnl"] else "ATen GEMMs")


def applies(x: Tensor, w_hh: Tensor) -> bool:
    """Whether a layer reading `x` (float inputs or integer ids) with weights `w_hh` can run fused."""
    float_ok = not x.is_floating_point() or x.dtype == torch.float32
    return x.device.type == "cpu" and w_hh.dtype == torch.float32 and float_ok and load()


def dnnl_bf16() -> tuple[bool, str]:
    """Whether the kernels' bf16 GEMMs run on oneDNN (fast where the CPU has bf16), and if not, why."""
    if not load():
        return False, f"fused kernels unavailable: {_state['why']}"
    return bool(_state["dnnl_bf16"]), str(_state["bf16_why"])


def pack(w: Tensor, batch: int, steps: int) -> Tensor | None:
    """w (float32 or bf16) reordered for oneDNN at this batch size, or None where the kernels use at::mm."""
    usable = _state["dnnl_bf16"] if w.dtype == torch.bfloat16 else _state["dnnl"]
    if not usable or steps < PACK_MIN_STEPS:
        return None
    return torch.ops.mkldnn._reorder_linear_weight(w.detach().contiguous(), batch)


def gemms_only(states: Tensor, dg: Tensor, w_hh: Tensor) -> None:
    """Run only the GEMMs a layer's forward and backward issue, packing included (a speed ceiling).

    With w_hh in bf16, the bf16 GEMMs of a bf16 layer, operand casts included.
    """
    if not load():
        raise RuntimeError(f"fused kernels unavailable: {_state['why']}")
    steps, batch = dg.shape[:2]
    torch.ops.rnn_workbench.gemms_only(states, dg, w_hh, pack(w_hh, batch, steps),
                                       pack(w_hh.t(), batch, steps))


class _Linear(torch.autograd.Function):
    """y = x W^T + b with all three GEMMs (forward, dx, dW) in oneDNN, reading transposes in place."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")

    @staticmethod
    def backward(ctx, dy: Tensor):
        x, weight = ctx.saved_tensors
        dy = dy.contiguous()
        linear = torch.ops.mkldnn._linear_pointwise
        dx = linear(dy, weight.t(), None, "none", [], "") if ctx.needs_input_grad[0] else None
        dw = linear(dy.t(), x.t(), None, "none", [], "") if ctx.needs_input_grad[1] else None
        db = dy.sum(0) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return dx, dw, db


# below this many rows a linear layer is too small for oneDNN's call overhead to pay off
LINEAR_MIN_ROWS = 256


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """F.linear, with oneDNN GEMMs on the CPU where it has them (2x MKL's speed on AMD CPUs here)."""
    rows = x.numel() // max(1, x.shape[-1])
    if (x.device.type != "cpu" or x.dtype != torch.float32 or weight.dtype != torch.float32
            or rows < LINEAR_MIN_ROWS or not load() or not _state["dnnl"]):
        return torch.nn.functional.linear(x, weight, bias)
    y = _Linear.apply(x.reshape(rows, x.shape[-1]).contiguous(), weight, bias)
    return y.view(*x.shape[:-1], weight.shape[0])


def gemm_weight(w_hh: Tensor, low: torch.dtype | None) -> Tensor:
    """The W_hh the kernels read: the parameter itself, or its bf16 copy (made once per sequence)."""
    return w_hh if low is None else w_hh.detach().to(low)


class _RNN(torch.autograd.Function):
    @staticmethod
    def forward(ctx, gi: Tensor, ids: Tensor | None, w_hh: Tensor, h0: Tensor, lengths: Tensor | None,
                relu: bool, low: torch.dtype | None) -> Tensor:
        steps, batch = (ids if ids is not None else gi).shape[:2]
        w_hh = gemm_weight(w_hh, low)
        states = torch.ops.rnn_workbench.rnn_forward(gi, ids, w_hh, pack(w_hh, batch, steps), h0, lengths,
                                                     relu)
        ctx.save_for_backward(ids, states, w_hh, lengths)
        ctx.table_rows = gi.shape[0]
        ctx.relu = relu
        return states[1:]

    @staticmethod
    def backward(ctx, dout: Tensor):
        ids, states, w_hh, lengths = ctx.saved_tensors
        wt = pack(w_hh.t(), states.shape[1], states.shape[0] - 1)
        dgi, dw, dh0 = torch.ops.rnn_workbench.rnn_backward(dout, states, w_hh, wt, lengths, ctx.relu, ids,
                                                            ctx.table_rows)
        return dgi, None, dw, dh0, None, None, None


class _GRU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, gi: Tensor, ids: Tensor | None, w_hh: Tensor, b_hn: Tensor, h0: Tensor,
                lengths: Tensor | None, low: torch.dtype | None) -> Tensor:
        steps, batch = (ids if ids is not None else gi).shape[:2]
        w_hh = gemm_weight(w_hh, low)
        states, saved = torch.ops.rnn_workbench.gru_forward(gi, ids, w_hh, pack(w_hh, batch, steps), b_hn,
                                                            h0, lengths)
        ctx.save_for_backward(ids, saved, states, w_hh, lengths)
        ctx.table_rows = gi.shape[0]
        return states[1:]

    @staticmethod
    def backward(ctx, dout: Tensor):
        ids, saved, states, w_hh, lengths = ctx.saved_tensors
        wt = pack(w_hh.t(), states.shape[1], states.shape[0] - 1)
        dgi, dw, db_hn, dh0 = torch.ops.rnn_workbench.gru_backward(dout, saved, states, w_hh, wt, lengths,
                                                                   ids, ctx.table_rows)
        return dgi, None, dw, db_hn, dh0, None, None


class _LSTM(torch.autograd.Function):
    @staticmethod
    def forward(ctx, gi: Tensor, ids: Tensor | None, w_hh: Tensor, h0: Tensor, c0: Tensor,
                lengths: Tensor | None, low: torch.dtype | None) -> tuple[Tensor, Tensor]:
        steps, batch = (ids if ids is not None else gi).shape[:2]
        w_hh = gemm_weight(w_hh, low)
        states, cells, gates = torch.ops.rnn_workbench.lstm_forward(
            gi, ids, w_hh, pack(w_hh, batch, steps), h0, c0, lengths)
        ctx.save_for_backward(ids, gates, cells, states, w_hh, lengths)
        ctx.table_rows = gi.shape[0]
        return states[1:], cells[-1]

    @staticmethod
    def backward(ctx, dout: Tensor, dc_last: Tensor):
        ids, gates, cells, states, w_hh, lengths = ctx.saved_tensors
        wt = pack(w_hh.t(), states.shape[1], states.shape[0] - 1)
        dgi, dw, dh0, dc0 = torch.ops.rnn_workbench.lstm_backward(dout, dc_last, gates, cells, states, w_hh,
                                                                  wt, lengths, ids, ctx.table_rows)
        return dgi, None, dw, dh0, dc0, None, None


def run_layer(mode: str, gi: Tensor, w_hh: Tensor, b_hh: Tensor | None, h0: Tensor, c0: Tensor | None,
              lengths: Tensor | None, relu: bool, ids: Tensor | None = None, low: torch.dtype | None = None
              ) -> tuple[Tensor, Tensor, Tensor | None]:
    """(output, h_T, c_T) of one layer, its recurrent GEMMs in `low` (bf16) when given.

    `gi` holds W_ih x + b_ih for every step, (T, B, G*H), with b_hh folded in (for GRU only its r
    and z parts). With token `ids` (T, B), `gi` is instead the (V, G*H) table whose row id is that
    sum for a one-hot input, and the kernels read it in place of a gathered copy.
    """
    if not load():
        raise RuntimeError(f"fused kernels unavailable: {_state['why']}")
    gi = gi.contiguous()
    h0 = h0.contiguous()
    if ids is not None:
        ids = ids.to(dtype=torch.long).contiguous()
    if lengths is not None:
        lengths = lengths.to(device="cpu", dtype=torch.long)
    if mode == "rnn":
        out = _RNN.apply(gi, ids, w_hh, h0, lengths, relu, low)
        return out, out[-1], None
    if mode == "gru":
        h = w_hh.shape[1]
        b_hn = b_hh[2 * h:] if b_hh is not None else w_hh.new_zeros(h)
        out = _GRU.apply(gi, ids, w_hh, b_hn, h0, lengths, low)
        return out, out[-1], None
    out, c_last = _LSTM.apply(gi, ids, w_hh, h0, c0.contiguous(), lengths, low)
    return out, out[-1], c_last


class _MinScan(torch.autograd.Function):
    """The minGRU / minLSTM scan over a layer's projection (minimal.py), one C++ pass each way.

    The projection comes without its bias, in float32 or bf16 (a bf16 GEMM's own output): the kernels
    add the bias as they read it, and return its gradient in the projection's dtype, which is what the
    GEMMs' backward reads, so neither pass casts or adds over the (T, B, G·H) tensor.
    """

    @staticmethod
    def forward(ctx, proj: Tensor, bias: Tensor, h0: Tensor, lengths: Tensor | None, gates: int) -> Tensor:
        out = torch.ops.rnn_workbench.min_forward(proj, bias, h0, lengths, gates)
        ctx.save_for_backward(proj, bias, out, h0)
        ctx.lengths, ctx.gates = lengths, gates
        return out

    @staticmethod
    def backward(ctx, dout: Tensor):
        proj, bias, out, h0 = ctx.saved_tensors
        dproj, dh0 = torch.ops.rnn_workbench.min_backward(dout, proj, bias, out, h0, ctx.lengths, ctx.gates)
        dbias = dproj.sum((0, 1), dtype=torch.float32) if ctx.needs_input_grad[1] else None
        return dproj, dbias, dh0, None, None


def min_scan(proj: Tensor, bias: Tensor | None, h0: Tensor, lengths: Tensor | None, gates: int) -> Tensor:
    """h (T, B, H) of a minGRU (gates=2) or minLSTM (3) layer from its projection (T, B, gates·H), the
    bias not yet added (float32 or bf16), and the bias (None: zero)."""
    if lengths is not None:
        lengths = lengths.to("cpu", torch.int64)
    if bias is None:
        bias = h0.new_zeros(proj.shape[-1])
    return _MinScan.apply(proj.contiguous(), bias, h0.contiguous(), lengths, gates)


def min_applies(weight: Tensor) -> bool:
    """Whether a minimal layer with float `weight` can run its scan on the C++ kernels."""
    return weight.device.type == "cpu" and weight.dtype == torch.float32 and load()
