"""`workbench bench`: training speed of the scratch models against torch.nn, the tutorial loop and GEMMs.

For each cell and width, five ways to train a character model on the same (T, B) batches, timed
in one process, interleaved round by round after a warm-up, median over rounds:
  scratch   the CharLM the engine trains (on the CPU: the fused kernels, see fused.py)
  torch     a parameter-matched torch model: nn.Embedding(V, E) + nn.RNN/GRU/LSTM(E, H) + head,
            with E chosen so both have the same number of parameters
  torch-H   the same torch layer behind an H-wide embedding (more parameters; flatters scratch)
  tutorial  the tutorial style: nn.Linear over cat(one-hot x_t, h) at every step
  gemm      only the recurrent GEMMs of forward and backward at that shape, as the scratch model
            issues them (per step h W_hh^T and dG W_hh, then dW_hh once): a ceiling
  gemm+head the same plus the head's three GEMMs (logits, their input and weight gradients): every
            GEMM of the scratch model's training step, so a/f is the share of the step spent in GEMMs
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..model.networks import CharLM, count_parameters
from ..nn import fused, paths
from ..nn.cells import GATES
from .allocator import keep_freed_memory
from .optimizers import build_optimizer

VOCAB = 65  # the size of a Shakespeare character vocabulary
VARIANTS = ("scratch", "torch", "torch-H", "tutorial", "gemm", "gemm+head")


class TorchCharModel(nn.Module):
    """Embedding → torch.nn recurrent layer → head, the usual way to write a char model."""

    def __init__(self, cell: str, vocab: int, embed: int, hidden: int) -> None:
        super().__init__()
        layer = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}[cell]
        self.embed = nn.Embedding(vocab, embed)
        self.rnn = layer(embed, hidden)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, tokens: Tensor) -> Tensor:
        out, _ = self.rnn(self.embed(tokens))
        return self.head(out)


class TutorialCharModel(nn.Module):
    """One nn.Linear over cat(one-hot x_t, h_{t-1}) per step, the gates split from its output."""

    def __init__(self, cell: str, vocab: int, hidden: int) -> None:
        super().__init__()
        self.cell, self.vocab, self.hidden = cell, vocab, hidden
        self.i2g = nn.Linear(vocab + hidden, GATES[cell] * hidden)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, tokens: Tensor) -> Tensor:
        batch = tokens.shape[1]
        h = tokens.new_zeros(batch, self.hidden, dtype=torch.float32)
        c = torch.zeros_like(h)
        outs = []
        for x in F.one_hot(tokens, self.vocab).float().unbind(0):
            gates = self.i2g(torch.cat([x, h], dim=1))
            if self.cell == "rnn":
                h = torch.tanh(gates)
            elif self.cell == "gru":
                # the simple GRU variant (reset before the matmul) that per-step code usually writes
                r, z, n = gates.chunk(3, dim=1)
                h = (1 - torch.sigmoid(z)) * torch.tanh(n) + torch.sigmoid(z) * h
            else:
                i, f, g, o = gates.chunk(4, dim=1)
                c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                h = torch.sigmoid(o) * torch.tanh(c)
            outs.append(h)
        return self.head(torch.stack(outs))


def matched_embedding(cell: str, hidden: int, vocab: int = VOCAB) -> int:
    """E such that Embedding(V, E) + layer(E, H) has the parameters of the fused (G·H × V) table."""
    g = GATES[cell] * hidden
    return max(1, round(g * vocab / (vocab + g)))


def _train_step(model: nn.Module, opt: torch.optim.Optimizer, x: Tensor, y: Tensor) -> None:
    out = model(x)
    logits = out[0] if isinstance(out, tuple) else out
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def _gemm_ceiling(cell: str, hidden: int, batch: int, steps: int, device: torch.device,
                  low: torch.dtype | None = None) -> Callable[[], None]:
    """The recurrent GEMMs alone: h_{t-1} W_hh^T per step forward, dG_t W_hh per step backward, dW_hh.

    On the CPU with the fused kernels these are the very GEMM calls the kernels make (oneDNN, packed
    weights, dW_hh as one GEMM over all steps); elsewhere torch.mm in a loop, dW_hh accumulated per step.
    With `low` (bf16) the GEMMs read bf16 operands, the casts of h and dG included, as a bf16 layer's do.
    """
    g = GATES[cell] * hidden
    w = (torch.randn(g, hidden, device=device) / math.sqrt(hidden)).to(low or torch.float32)
    states = torch.randn(steps + 1, batch, hidden, device=device)
    dg = torch.randn(steps, batch, g, device=device)
    if device.type == "cpu" and fused.load():
        return lambda: fused.gemms_only(states, dg, w)
    dw = torch.zeros(g, hidden, device=device)
    w_t = w.t()
    cast = (lambda t: t) if low is None else (lambda t: t.to(low))  # noqa: E731

    def run() -> None:
        for t in range(steps):
            torch.mm(cast(states[t]), w_t)
        for t in reversed(range(steps)):
            d = cast(dg[t])
            torch.mm(d, w)
            if low is None:
                dw.addmm_(d.t(), states[t])
            else:  # bf16 product, fp32 sum, as the per-step path sums W_hh's gradient
                dw.add_(torch.mm(d.t(), cast(states[t])))

    return run


def _with_head(recurrent: Callable[[], None], hidden: int, rows: int, device: torch.device
               ) -> Callable[[], None]:
    """`recurrent` followed by the head's forward and backward GEMMs, as CharLM runs its head."""
    x = torch.randn(rows, hidden, device=device, requires_grad=True)
    head = nn.Linear(hidden, VOCAB).to(device)
    dy = torch.randn(rows, VOCAB, device=device)
    params = (x, head.weight, head.bias)

    def run() -> None:
        recurrent()
        torch.autograd.grad(fused.linear(x, head.weight, head.bias), params, dy)

    return run


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _interleaved(runs: dict[str, Callable[[], None]], rounds: int, reps: int, device: torch.device
                 ) -> dict[str, list[float]]:
    """Seconds per run of each variant, round by round, so a machine's slow spells hit them all."""
    _sync(device)
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            _sync(device)
            t0 = time.perf_counter()
            for _ in range(reps):
                run()
            _sync(device)
            times[name].append((time.perf_counter() - t0) / reps)
    return times


def bench_shape(cell: str, hidden: int, batch: int, steps: int, rounds: int, device: torch.device,
                reps: int = 2) -> list[dict[str, Any]]:
    """chars/s of the five variants at one shape, median over interleaved rounds."""
    torch.manual_seed(0)
    x = torch.randint(0, VOCAB, (steps, batch), device=device)
    y = torch.randint(0, VOCAB, (steps, batch), device=device)
    models: dict[str, nn.Module] = {
        "scratch": CharLM(VOCAB, cell, hidden),
        "torch": TorchCharModel(cell, VOCAB, matched_embedding(cell, hidden), hidden),
        "torch-H": TorchCharModel(cell, VOCAB, hidden, hidden),
        "tutorial": TutorialCharModel(cell, VOCAB, hidden),
    }
    runs: dict[str, Callable[[], None]] = {}
    for name, model in models.items():
        model.to(device)
        opt = build_optimizer("adam", model.parameters(), 1e-3)  # as the trainer makes it, for all
        runs[name] = (lambda m=model, o=opt: _train_step(m, o, x, y))
    runs["gemm"] = _gemm_ceiling(cell, hidden, batch, steps, device)
    runs["gemm+head"] = _with_head(runs["gemm"], hidden, steps * batch, device)
    for run in runs.values():  # warm-up: allocator, oneDNN primitives, lazy init
        run()
        run()
    times = _interleaved(runs, rounds, reps, device)
    chars = steps * batch
    out = []
    for name, ts in times.items():
        params = count_parameters(models[name]) if name in models else 0
        seconds = statistics.median(ts)
        out.append({"cell": cell, "hidden": hidden, "variant": name, "chars_per_s": chars / seconds,
                    "seconds_per_step": seconds, "parameters": params})
    return out


PRECISION_VARIANTS = ("scratch bf16", "torch bf16", "scratch fp32", "gemm bf16")


def bench_bf16(cell: str, hidden: int, batch: int, steps: int, rounds: int, device: torch.device,
               reps: int = 1) -> list[dict[str, Any]]:
    """chars/s of scratch with bf16 GEMMs, the matched torch model under autocast, scratch fp32, and
    the bf16 recurrent GEMMs alone (the ceiling for the first)."""
    from ..model.networks import set_gemm_dtype
    from ..nn.precision import autocast

    torch.manual_seed(0)
    x = torch.randint(0, VOCAB, (steps, batch), device=device)
    y = torch.randint(0, VOCAB, (steps, batch), device=device)
    low, fp32 = CharLM(VOCAB, cell, hidden).to(device), CharLM(VOCAB, cell, hidden).to(device)
    set_gemm_dtype(low, torch.bfloat16)
    ref = TorchCharModel(cell, VOCAB, matched_embedding(cell, hidden), hidden).to(device)
    runs: dict[str, Callable[[], None]] = {}
    for name, model in (("scratch bf16", low), ("torch bf16", ref), ("scratch fp32", fp32)):
        opt = build_optimizer("adam", model.parameters(), 1e-3)
        context = autocast("bf16" if name == "torch bf16" else "fp32", device)

        def run(m: nn.Module = model, o: torch.optim.Optimizer = opt, ctx: Any = context) -> None:
            with ctx:
                _train_step(m, o, x, y)

        runs[name] = run
    runs["gemm bf16"] = _gemm_ceiling(cell, hidden, batch, steps, device, torch.bfloat16)
    failed: dict[str, str] = {}
    for name, run in list(runs.items()):  # warm-up; torch refuses some cells in bf16 on some CPUs
        try:
            run()
        except RuntimeError as exc:
            failed[name] = str(exc).splitlines()[0][:120]
            del runs[name]
    times = _interleaved(runs, rounds, reps, device)
    out = [{"cell": cell, "hidden": hidden, "variant": name,
            "chars_per_s": steps * batch / statistics.median(ts)} for name, ts in times.items()]
    out += [{"cell": cell, "hidden": hidden, "variant": name, "chars_per_s": None, "failed": why}
            for name, why in failed.items()]
    return out


def run_bench_bf16(device: str = "cpu", rounds: int = 3, quick: bool = False) -> dict[str, Any]:
    from ..nn.precision import fast_bf16
    from .devices import resolve_device

    dev = resolve_device(device)
    keep_freed_memory()
    hidden = 64 if quick else 256
    steps, batch = (10, 8) if quick else (100, 64)
    results = []
    for cell in ("rnn", "gru", "lstm"):
        results.extend(bench_bf16(cell, hidden, batch, steps, 1 if quick else rounds, dev))
    rate = {(r["cell"], r["variant"]): r["chars_per_s"] for r in results}

    def ratio(a: str, b: str, cell: str) -> float | None:
        x, y = rate.get((cell, a)), rate.get((cell, b))
        return x / y if x and y else None

    fast, why = fast_bf16(dev)
    return {"device": str(dev), "threads": torch.get_num_threads(), "batch": batch, "steps": steps,
            "hidden": hidden, "precision": "bf16", "fast_bf16": fast, "fast_bf16_why": why,
            "recurrent_path": paths.describe(dev, torch.float32, "bf16"),
            "ratios": {c: ratio("scratch bf16", "torch bf16", c) for c in ("rnn", "gru", "lstm")},
            "speedup_vs_fp32": {c: ratio("scratch bf16", "scratch fp32", c) for c in ("rnn", "gru", "lstm")},
            "efficiency_vs_gemm": {c: ratio("scratch bf16", "gemm bf16", c) for c in ("rnn", "gru", "lstm")},
            "results": results}


def format_bf16_table(report: dict[str, Any]) -> str:
    rate = {(r["cell"], r["variant"]): r for r in report["results"]}
    lines = [f"device {report['device']}, {report['threads']} threads, B={report['batch']}, "
             f"T={report['steps']}, H={report['hidden']}; training chars/s, median; bf16 hardware: "
             f"{report['fast_bf16_why']}",
             "scratch bf16: bf16 GEMM inputs, fp32 gates, states and master weights; recurrence: "
             f"{report.get('recurrent_path', '?')}",
             f"{'cell':<5} {'scratch bf16':>13} {'torch bf16':>11} {'scratch fp32':>13} {'gemm bf16':>10}  "
             f"{'a/b':>5} {'a/c':>5} {'a/d':>5}"]
    for cell in ("rnn", "gru", "lstm"):
        cells = []
        for name in PRECISION_VARIANTS:
            r = rate.get((cell, name), {})
            cells.append(f"{r['chars_per_s']:,.0f}" if r.get("chars_per_s") else "failed")
        ab, ac, ad = (("—" if v is None else f"{v:.2f}") for v in (
            report["ratios"][cell], report["speedup_vs_fp32"][cell], report["efficiency_vs_gemm"][cell]))
        lines.append(f"{cell:<5} {cells[0]:>13} {cells[1]:>11} {cells[2]:>13} {cells[3]:>10}  "
                     f"{ab:>5} {ac:>5} {ad:>5}")
    for r in report["results"]:
        if r.get("failed"):
            lines.append(f"{r['cell']} {r['variant']}: {r['failed']}")
    return "\n".join(lines)


def bench_names(device: torch.device, thresholds: tuple[float, ...], limit: float) -> dict[str, Any]:
    """names/s of the default classifier on the bundled names and seconds to each test accuracy."""
    from pathlib import Path

    from ..config import default_config
    from ..events import EpochFinished
    from .trainer import Trainer

    data = Path(__file__).resolve().parents[2] / "sample_texts" / "names"  # the repository's bundled names
    if not data.is_dir():
        return {"skipped": f"{data} not found"}
    reached: dict[str, float | None] = {f"{t:.0%}": None for t in thresholds}
    start = time.perf_counter()

    def sink(event: Any) -> None:
        if isinstance(event, EpochFinished) and event.val_accuracy is not None:
            for t in thresholds:
                if event.val_accuracy >= t and reached[f"{t:.0%}"] is None:
                    reached[f"{t:.0%}"] = time.perf_counter() - start

    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        config = default_config("names", data=str(data), device=str(device), time_budget=limit)
        summary = Trainer(config, sink=sink, runs_dir=tmp, diag_every=0).run()
    return {"names_per_s": summary["names_per_s"], "test_accuracy": summary["test_accuracy"],
            "seconds_to_accuracy": reached, "seconds": time.perf_counter() - start,
            "epochs": summary["epochs"]}


def run_bench(device: str = "cpu", rounds: int = 5, quick: bool = False,
              names_thresholds: tuple[float, ...] = (0.75, 0.80)) -> dict[str, Any]:
    from .devices import resolve_device

    dev = resolve_device(device)
    # what the trainer does too; applies to every variant alike
    keep_freed_memory()
    hiddens = (64,) if quick else (256, 512)
    steps, batch = (20, 16) if quick else (100, 64)
    results = []
    for hidden in hiddens:
        for cell in ("rnn", "gru", "lstm"):
            results.extend(bench_shape(cell, hidden, batch, steps, 2 if quick else rounds, dev))
    rate = {(r["cell"], r["hidden"], r["variant"]): r["chars_per_s"] for r in results}
    ref = hiddens[0]
    ratios = {c: rate[(c, ref, "scratch")] / rate[(c, ref, "torch")] for c in ("rnn", "gru", "lstm")}
    efficiency = {c: rate[(c, ref, "scratch")] / rate[(c, ref, "gemm")] for c in ("rnn", "gru", "lstm")}
    gemm_share = {c: rate[(c, ref, "scratch")] / rate[(c, ref, "gemm+head")] for c in ("rnn", "gru", "lstm")}
    out: dict[str, Any] = {"device": str(dev), "threads": torch.get_num_threads(), "batch": batch,
                           "recurrent_path": paths.describe(dev, torch.float32),
                           "steps": steps, "ratios": ratios, "efficiency": efficiency,
                           "efficiency_all_gemms": gemm_share, "results": results}
    out["names"] = bench_names(dev, names_thresholds, 10.0 if quick else 60.0)
    return out


def format_table(report: dict[str, Any]) -> str:
    rate = {(r["cell"], r["hidden"], r["variant"]): r["chars_per_s"] for r in report["results"]}
    lines = [f"device {report['device']}, {report['threads']} threads, B={report['batch']}, "
             f"T={report['steps']}; training chars/s (forward, backward, Adam), median",
             f"scratch recurrence: {report.get('recurrent_path', '?')}",
             f"{'cell':<5} {'H':>4} {'scratch':>9} {'torch':>9} {'torch-H':>9} {'tutorial':>9} "
             f"{'gemm':>9} {'gemm+head':>9}  {'a/b':>5} {'a/c':>5} {'a/d':>5} {'a/e':>5} {'a/f':>5}"]
    for cell, hidden in sorted({(r["cell"], r["hidden"]) for r in report["results"]},
                               key=lambda k: (k[1], ["rnn", "gru", "lstm"].index(k[0]))):
        v = [rate[(cell, hidden, n)] for n in VARIANTS]
        lines.append(f"{cell:<5} {hidden:>4} " + " ".join(f"{x:>9,.0f}" for x in v) + "  " +
                     " ".join(f"{v[0] / x:>5.2f}" for x in v[1:]))
    n = report.get("names", {})
    if "names_per_s" in n:
        reached = ", ".join(f"{k} after {v:.1f} s" if v is not None else f"{k} not reached"
                            for k, v in n["seconds_to_accuracy"].items())
        lines.append(f"names: {n['names_per_s']:,.0f} names/s; test accuracy {reached}; "
                     f"{n['test_accuracy']:.1%} at the end ({n['epochs']:.1f} epochs, {n['seconds']:.0f} s)")
    return "\n".join(lines)


