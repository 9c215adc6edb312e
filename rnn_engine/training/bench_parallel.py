"""`workbench bench --parallel`: minGRU and minLSTM against GRU and LSTM, and their scan three ways.

The language models as `workbench train` builds them (same width and depth, dropout off, the
precision `--precision auto` picks on this device), trained on the same random batches, interleaved
round by round, median over rounds. For the parallel cells, the GEMMs of their step alone (every
layer's projection and the head, forward and both gradients) give the share of the step they take.
Then the scan alone over a (T, B, H) projection, forward and backward: the fused C++ pass, Heinsen's
log-space scan in PyTorch ops (cumsum and logcumsumexp), and the per-step equations.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from ..config import default_config
from ..model.checkpoint import build_model
from ..model.networks import count_parameters, set_gemm_dtype
from ..nn import fused
from ..nn.minimal import MIN_GATES, log_scan, step_scan
from ..nn.precision import resolve
from .bench import VOCAB, _interleaved
from .optimizers import build_optimizer

CELLS = ("gru", "lstm", "mingru", "minlstm")


def _gemms(cell: str, hidden: int, layers: int, rows: int, low: torch.dtype | None,
           device: torch.device) -> Callable[[], None]:
    """The GEMMs of a ResidualLM step: per layer x W^T, dY W and dY^T x; the head's three."""
    dtype = low or torch.float32
    shapes = [(hidden, MIN_GATES[cell] * hidden)] * layers + [(hidden, VOCAB)]
    mats = [(torch.randn(rows, i, device=device, dtype=dtype), torch.randn(o, i, device=device, dtype=dtype),
             torch.randn(rows, o, device=device, dtype=dtype)) for i, o in shapes]

    def run() -> None:
        for x, w, dy in mats:
            torch.mm(x, w.t())
            torch.mm(dy, w)
            torch.mm(dy.t(), x)
    return run


def _scans(hidden: int, batch: int, steps: int, rounds: int, device: torch.device) -> list[dict[str, Any]]:
    """Forward and backward of one layer's scan, per way and cell, in ms (median)."""
    out = []
    for cell, gates in MIN_GATES.items():
        torch.manual_seed(0)
        proj = torch.randn(steps, batch, gates * hidden, device=device, requires_grad=True)
        h0 = torch.zeros(batch, hidden, device=device)
        ways: dict[str, Callable[[], torch.Tensor]] = {
            "log-space": lambda c=cell, p=proj: log_scan(c, p),
            "per-step": lambda c=cell, p=proj, h=h0: step_scan(c, p, h),
        }
        if device.type == "cpu" and fused.load():
            ways["fused C++"] = lambda g=gates, p=proj, h=h0: fused.min_scan(p, None, h, None, g)
        runs = {name: (lambda f=f: f().sum().backward()) for name, f in ways.items()}
        for run in runs.values():
            run()
        times = _interleaved(runs, rounds, 1, device)
        out += [{"cell": cell, "way": name, "ms": 1e3 * statistics.median(ts)} for name, ts in times.items()]
    return out


def run_bench_parallel(device: str = "cpu", rounds: int = 5, quick: bool = False) -> dict[str, Any]:
    from .devices import resolve_device

    dev = resolve_device(device)
    hidden, layers = (64, 2) if quick else (512, 2)
    steps, batch = (20, 8) if quick else (100, 64)
    precision, why = resolve(default_config("charlm", data="x", precision="auto"), dev)
    low = torch.bfloat16 if precision == "bf16" else None
    torch.manual_seed(0)
    x = torch.randint(0, VOCAB, (steps, batch), device=dev)
    y = torch.randint(0, VOCAB, (steps, batch), device=dev)
    runs: dict[str, Callable[[], None]] = {}
    params = {}
    for cell in CELLS:
        cfg = default_config("charlm", data="x", cell=cell, hidden_size=hidden, num_layers=layers,
                             dropout=0.0)
        model = build_model(cfg, VOCAB).to(dev)
        set_gemm_dtype(model, low)
        params[cell] = count_parameters(model)
        opt = build_optimizer("adam", model.parameters(), 1e-3)
        runs[cell] = (lambda m=model, o=opt: _lm_step(m, o, x, y))
        if cell in MIN_GATES:
            runs[f"{cell} gemms"] = _gemms(cell, hidden, layers, steps * batch, low, dev)
    for run in runs.values():  # warm-up: allocator, oneDNN primitives, the kernels' build
        run()
        run()
    times = _interleaved(runs, 2 if quick else rounds, 1, dev)
    rate = {name: steps * batch / statistics.median(ts) for name, ts in times.items()}
    rows = [{"cell": c, "chars_per_s": rate[c], "parameters": params[c],
             "gemm_share": rate[c] / rate[f"{c} gemms"] if c in MIN_GATES else None} for c in CELLS]
    return {"device": str(dev), "threads": torch.get_num_threads(), "hidden": hidden, "layers": layers,
            "batch": batch, "steps": steps, "precision": precision, "precision_why": why, "results": rows,
            "speedup": {c: rate[c] / rate["gru"] for c in CELLS},
            "scans": _scans(hidden, batch, steps, 2 if quick else rounds, dev)}


def _lm_step(model: torch.nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> None:
    logits, _ = model(x)
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def format_parallel_table(report: dict[str, Any]) -> str:
    shape = f"{report['layers']}x{report['hidden']}"
    lines = [f"device {report['device']}, {report['threads']} threads, {shape}, "
             f"B={report['batch']}, T={report['steps']}, {report['precision']} ({report['precision_why']}); "
             "training chars/s of the language model, median",
             f"{'cell':<8} {'chars/s':>9} {'vs gru':>7} {'params':>10} {'GEMM share':>11}"]
    for r in report["results"]:
        share = f"{r['gemm_share']:.0%}" if r["gemm_share"] is not None else "-"
        lines.append(f"{r['cell']:<8} {r['chars_per_s']:>9,.0f} {report['speedup'][r['cell']]:>6.2f}x "
                     f"{r['parameters']:>10,} {share:>11}")
    lines.append(f"one layer's scan over (T={report['steps']}, B={report['batch']}, H={report['hidden']}), "
                 "forward + backward, ms (median):")
    for cell in MIN_GATES:
        ways = "  ".join(f"{s['way']} {s['ms']:.1f}" for s in report["scans"] if s["cell"] == cell)
        lines.append(f"  {cell:<8} {ways}")
    return "\n".join(lines)

