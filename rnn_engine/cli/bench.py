"""`workbench bench`: training speed of the scratch models against torch.nn, as a table and JSON."""

from __future__ import annotations

import argparse
import json
from typing import Any


def add_parser(sub: Any) -> None:
    b = sub.add_parser("bench", help="training speed of the scratch models against torch.nn")
    b.set_defaults(func=main)
    b.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or mps (default cpu)")
    b.add_argument("--rounds", type=int, default=5, help="timed rounds per variant (median)")
    b.add_argument("--quick", action="store_true", help="tiny shapes: a smoke test, not a measurement")
    b.add_argument("--json", action="store_true", help="print one JSON report as the last line")
    b.add_argument("--precision", choices=["fp32", "bf16"], default="fp32", help="bf16: the scratch model "
                   "with bf16 GEMMs against torch.nn under autocast and against its own fp32 (H=256)")
    b.add_argument("--parallel", action="store_true", help="minGRU and minLSTM against GRU and LSTM in the "
                   "2x512 language model, and their scan three ways (fused, log-space, per step)")


def main(args: argparse.Namespace, argv: list[str]) -> int:
    from ..training.bench import format_bf16_table, format_table, run_bench, run_bench_bf16

    if args.parallel:
        from ..training.bench_parallel import format_parallel_table, run_bench_parallel

        report = run_bench_parallel(args.device, args.rounds, args.quick)
        table = format_parallel_table(report)
    elif getattr(args, "precision", "fp32") == "bf16":
        report = run_bench_bf16(args.device, min(args.rounds, 3), args.quick)
        table = format_bf16_table(report)
    else:
        report = run_bench(args.device, args.rounds, args.quick)
        table = format_table(report)
    print(table, flush=True)
    if args.json:
        print(json.dumps(report))
    return 0
