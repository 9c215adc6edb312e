"""The GPU path on a borrowed GPU, in one go: kernels' parity with torch.nn, then training speed.

    python benchmarks/gpu_check.py [--out gpu_check.json] [--seconds 1.5]
    python benchmarks/gpu_check.py --dry-run     # the same code on tiny shapes, on a CPU

1. Parity: each cell (RNN tanh and relu, GRU, LSTM), two layers, bidirectional, padded lengths,
   on the Triton kernels against torch.nn with the same weights: the largest difference in the
   outputs and in every gradient (fp32, TF32 off on both sides). The self-check's verdict too.
2. Speed: training chars/s of the character language model (forward, backward, Adam step) at
   B = 64, T = 100 for GRU and LSTM, H = 256, 512, 1024, one and two layers, on four paths: the
   scratch layers on the Triton kernels, the scratch layers' per-step PyTorch ops, cuDNN (fp32),
   and cuDNN under bf16 autocast. Each is timed for `--seconds` after warm-up steps (compiles).

3. The parallel cells: minGRU and minLSTM's Triton scan against their per-step equations (padded
   lengths, fp32), then their language model's training chars/s on the Triton scan and per step,
   beside cuDNN's GRU and LSTM at the same width and depth from part 2.

Prints a table and writes JSON. `--dry-run` runs every part on tiny shapes on the CPU, the
kernels under Triton's interpreter: it proves the script, not the GPU's figures.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

PATHS = ("triton", "per-step", "cudnn fp32", "cudnn bf16")


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dry-run", action="store_true",
                   help="tiny shapes on the CPU, the kernels under Triton's interpreter")
    p.add_argument("--out", default="gpu_check.json", help="where the JSON goes (default gpu_check.json)")
    p.add_argument("--seconds", type=float, default=1.5, help="timed seconds per measurement (default 1.5)")
    return p.parse_args()


def parity(device: Any, shape: tuple[int, int, int, int]) -> list[dict[str, Any]]:
    """Triton-kernel layers against torch.nn's, same weights, bidirectional, padded lengths."""
    import torch

    from rnn_engine.nn import gpu_path
    from rnn_engine.nn.recurrent import Recurrent

    steps, batch, inputs, hidden = shape
    rows = []
    for mode, nonlinearity in (("rnn", "tanh"), ("rnn", "relu"), ("gru", "tanh"), ("lstm", "tanh")):
        torch.manual_seed(0)
        scratch = Recurrent(mode, inputs, hidden, num_layers=2, nonlinearity=nonlinearity,
                            bidirectional=True).to(device)
        scratch.kernels = "triton"
        kind = {"rnn": torch.nn.RNN, "gru": torch.nn.GRU, "lstm": torch.nn.LSTM}[mode]
        extra = {"nonlinearity": nonlinearity} if mode == "rnn" else {}
        reference = kind(inputs, hidden, num_layers=2, bidirectional=True, **extra).to(device)
        reference.load_state_dict(scratch.state_dict())
        x = torch.randn(steps, batch, inputs, device=device)
        lengths = torch.linspace(steps, 1, batch).round().long()
        results = []
        with gpu_path.ieee_fp32():
            out_s, _ = scratch(x, lengths=lengths.to(device))
            packed = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, enforce_sorted=False)
            out_t, _ = torch.nn.utils.rnn.pad_packed_sequence(reference(packed)[0], total_length=steps)
            for model, out in ((scratch, out_s), (reference, out_t)):
                out.square().sum().backward()
                results.append((out.detach(), [p.grad for p in model.parameters()]))
        (a, ga), (b, gb) = results
        rows.append({"cell": mode if mode != "rnn" else f"rnn-{nonlinearity}", "shape": list(shape),
                     "max_abs_diff_output": float((a - b).abs().max()),
                     "max_abs_diff_grad": max(float((x - y).abs().max()) for x, y in zip(ga, gb))})
    return rows


def parallel_parity(device: Any, shape: tuple[int, int, int, int]) -> list[dict[str, Any]]:
    """minGRU/minLSTM layers on the Triton scan against their per-step equations, padded lengths."""
    import torch

    from rnn_engine.nn.minimal import MinRecurrent

    steps, batch, inputs, hidden = shape
    rows = []
    for mode in ("mingru", "minlstm"):
        torch.manual_seed(0)
        x = torch.randn(steps, batch, inputs, device=device)
        lengths = torch.linspace(steps, 1, batch).round().long().to(device)
        weights = MinRecurrent(mode, inputs, hidden, num_layers=2).state_dict()
        results = []
        for kernels in ("triton", None):
            layer = MinRecurrent(mode, inputs, hidden, num_layers=2).to(device)
            layer.load_state_dict(weights)
            layer.kernels, layer.use_fused = kernels, kernels is not None
            out, _ = layer(x, lengths=lengths)
            out.square().sum().backward()
            results.append((out.detach(), [p.grad for p in layer.parameters()]))
        (a, ga), (b, gb) = results
        rows.append({"cell": mode, "shape": list(shape), "max_abs_diff_output": float((a - b).abs().max()),
                     "max_abs_diff_grad": max(float((u - v).abs().max()) for u, v in zip(ga, gb))})
    return rows


def _model(cell: str, vocab: int, hidden: int, layers: int, path: str, device: Any) -> Any:
    """The character model of `cell` on `path`: CharLM (classic cells), ResidualLM (parallel ones)."""
    from rnn_engine.model.networks import CharLM, ResidualLM
    from rnn_engine.nn.minimal import MinRecurrent

    if cell in ("mingru", "minlstm"):
        model = ResidualLM(vocab, cell, hidden, layers).to(device)
        for layer in model.modules():
            if isinstance(layer, MinRecurrent):
                layer.kernels = "triton" if path == "triton" else None
                layer.use_fused = path == "triton"
        return model
    impl = "torch" if path.startswith("cudnn") else "scratch"
    model = CharLM(vocab, cell, hidden, layers, "tanh", 0.0, impl).to(device)
    if impl == "scratch":
        model.rnn.kernels = "triton" if path == "triton" else None
        model.rnn.use_fused = path == "triton"  # per-step: the fallback's path
    return model


def speed(device: Any, cell: str, hidden: int, layers: int, path: str, batch: int, steps: int,
          seconds: float) -> dict[str, Any]:
    """Training chars/s of the character model on one path."""
    import torch
    import torch.nn.functional as F

    vocab = 96
    torch.manual_seed(0)
    model = _model(cell, vocab, hidden, layers, path, device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    tokens = torch.randint(0, vocab, (steps + 1, batch), device=device)
    autocast = (torch.autocast(device.type, dtype=torch.bfloat16) if path == "cudnn bf16"
                else contextlib.nullcontext())

    def step() -> None:
        with autocast:
            logits, _ = model(tokens[:-1])
            loss = F.cross_entropy(logits.reshape(-1, vocab).float(), tokens[1:].reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(3):  # compiles, cuBLAS handles, allocator
        step()
    sync()
    start, done = time.perf_counter(), 0
    while True:
        step()
        done += 1
        sync()
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            break
    return {"cell": cell, "hidden": hidden, "layers": layers, "path": path,
            "chars_per_s": round(done * batch * steps / elapsed, 1), "steps_timed": done}


def measured(device: Any, cell: str, hidden: int, layers: int, path: str, batch: int, steps: int,
             seconds: float) -> dict[str, Any]:
    """`speed`, or the error that stopped it (one path failing must not lose the others' figures)."""
    try:
        return speed(device, cell, hidden, layers, path, batch, steps, seconds)
    except Exception as exc:  # noqa: BLE001 - recorded in the report and shown in the table
        return {"cell": cell, "hidden": hidden, "layers": layers, "path": path, "chars_per_s": None,
                "error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"}


def table(parity_rows: list[dict[str, Any]], speed_rows: list[dict[str, Any]], batch: int, steps: int) -> str:
    lines = ["parity with torch.nn (2 layers, bidirectional, padded; fp32, TF32 off)",
             f"  {'cell':<10} {'max |Δ out|':>12} {'max |Δ grad|':>13}"]
    lines += [f"  {r['cell']:<10} {r['max_abs_diff_output']:>12.2e} {r['max_abs_diff_grad']:>13.2e}"
              for r in parity_rows]
    lines += ["", f"training chars/s (B = {batch}, T = {steps})",
              f"  {'cell':<5} {'H':>5} {'L':>2} " + " ".join(f"{p:>11}" for p in PATHS)
              + f" {'triton/cudnn':>13} {'triton/step':>12}"]
    shapes = sorted({(r["cell"], r["hidden"], r["layers"]) for r in speed_rows})
    for cell, hidden, layers in shapes:
        rate = {r["path"]: r["chars_per_s"] for r in speed_rows
                if (r["cell"], r["hidden"], r["layers"]) == (cell, hidden, layers)}
        cells = " ".join(f"{rate[p]:>11,.0f}" if rate.get(p) else f"{'failed':>11}" for p in PATHS)
        vs_cudnn = rate["triton"] / rate["cudnn fp32"] if rate.get("cudnn fp32") else 0.0
        vs_step = rate["triton"] / rate["per-step"] if rate.get("per-step") else 0.0
        lines.append(f"  {cell:<5} {hidden:>5} {layers:>2} {cells} {vs_cudnn:>12.2f}x {vs_step:>11.2f}x")
    lines += [f"  {r['cell']} H={r['hidden']} L={r['layers']} {r['path']}: {r['error']}"
              for r in speed_rows if r.get("error")]
    return "\n".join(lines)


def parallel_table(parity_rows: list[dict[str, Any]], speed_rows: list[dict[str, Any]],
                   classic_rows: list[dict[str, Any]]) -> str:
    lines = ["minGRU / minLSTM: the Triton scan against the per-step equations (2 layers, padded, fp32)"]
    lines += [f"  {r['cell']:<10} {r['max_abs_diff_output']:>12.2e} {r['max_abs_diff_grad']:>13.2e}"
              for r in parity_rows]
    cudnn = {(r["cell"], r["hidden"], r["layers"]): r["chars_per_s"] for r in classic_rows
             if r["path"] == "cudnn fp32"}
    lines += ["training chars/s of their language model", f"  {'cell':<8} {'H':>5} {'L':>2} {'triton':>11} "
              f"{'per-step':>11} {'cudnn GRU':>11} {'cudnn LSTM':>11} {'vs GRU':>7}"]
    for cell, hidden, layers in sorted({(r["cell"], r["hidden"], r["layers"]) for r in speed_rows}):
        rate = {r["path"]: r["chars_per_s"] for r in speed_rows
                if (r["cell"], r["hidden"], r["layers"]) == (cell, hidden, layers)}
        gru, lstm = cudnn.get(("gru", hidden, layers)), cudnn.get(("lstm", hidden, layers))
        shown = [rate.get("triton"), rate.get("per-step"), gru, lstm]
        vs = rate["triton"] / gru if rate.get("triton") and gru else 0.0
        lines.append(f"  {cell:<8} {hidden:>5} {layers:>2} "
                     + " ".join(f"{v:>11,.0f}" if v else f"{'-':>11}" for v in shown) + f" {vs:>6.2f}x")
    lines += [f"  {r['cell']} H={r['hidden']} L={r['layers']} {r['path']}: {r['error']}"
              for r in speed_rows if r.get("error")]
    return "\n".join(lines)


def main() -> int:
    args = parse()
    import torch

    on_gpu = torch.cuda.is_available() and not args.dry_run
    if not on_gpu:
        if not args.dry_run:
            print("gpu_check: no CUDA device here; --dry-run runs the same code on tiny shapes on the CPU",
                  file=sys.stderr)
            return 2
        os.environ["TRITON_INTERPRET"] = "1"  # before Triton's first import, which comes below
    from rnn_engine.nn import gpu_path

    if (missing := gpu_path.triton_missing()) is not None:
        print(f"gpu_check: {missing}", file=sys.stderr)
        return 2
    device = torch.device("cuda" if on_gpu else "cpu")
    gpu_path.set_fp32_policy()
    started = time.perf_counter()
    if on_gpu:
        ready, why = gpu_path.triton_ready(device)
        parity_shape, batch, steps = (100, 64, 128, 512), 64, 100
        grid = [(c, h, n) for c in ("gru", "lstm") for h in (256, 512, 1024) for n in (1, 2)]
    else:
        failed = gpu_path.self_check(device)
        ready, why = failed is None, failed or "self-check passed under the interpreter"
        parity_shape, batch, steps = (6, 3, 5, 8), 2, 5
        grid = [(c, h, n) for c in ("gru", "lstm") for h in (8,) for n in (1, 2)]
        args.seconds = min(args.seconds, 0.05)
    parity_rows = parity(device, parity_shape)
    speed_rows = [measured(device, c, h, n, p, batch, steps, args.seconds) for c, h, n in grid for p in PATHS]
    min_parity = parallel_parity(device, parity_shape)
    min_grid = [(c, h, n) for c in ("mingru", "minlstm") for _, h, n in grid if _ == "gru"]
    min_rows = [measured(device, c, h, n, p, batch, steps, args.seconds) for c, h, n in min_grid
                for p in ("triton", "per-step")]
    report = {"device": torch.cuda.get_device_name(device) if on_gpu else "cpu (dry run, interpreter)",
              "torch": torch.__version__, "triton_ready": ready, "triton_why": why,
              "dry_run": not on_gpu, "seconds": round(time.perf_counter() - started, 1),
              "parity": parity_rows, "speed": speed_rows, "parallel_parity": min_parity,
              "parallel_speed": min_rows}
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"{report['device']} · torch {report['torch']} · self-check: {why}")
    print(table(parity_rows, speed_rows, batch, steps))
    print()
    print(parallel_table(min_parity, min_rows, speed_rows))
    print(f"\n{report['seconds']} s; JSON in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
