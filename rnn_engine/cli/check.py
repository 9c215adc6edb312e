"""`workbench check`: does a run's scratch model compute what torch.nn computes with its weights?"""

from __future__ import annotations

import argparse
import json
from typing import Any

from .parsing import CliError, add_run_argument


def add_parser(sub: Any) -> None:
    c = sub.add_parser("check", help="does the run's scratch model compute what torch.nn computes with "
                       "its weights? (largest difference in outputs and gradients)")
    add_run_argument(c)
    c.set_defaults(func=check_run)
    c.add_argument("--kernels", choices=["triton"], default=None,
                   help="run the scratch layers on the GPU path's Triton kernels: natively on a GPU, "
                   "else on the CPU under Triton's interpreter (a small batch; needs `pip install triton`)")
    c.add_argument("--json", action="store_true", help="print one JSON object: reference, "
                   "max_abs_diff_output, max_abs_diff_grad, kernels, and what was compared")


def check_run(args: argparse.Namespace, argv: list[str]) -> int:
    from ..analysis.check import check_model
    from ..model.checkpoint import load
    from ..rundir.runs import RunNotFound, resolve_model

    try:
        path = resolve_model(args.run, args.runs_dir)
    except RunNotFound as exc:
        raise CliError(f"check: {exc}") from None
    ck = load(path)
    try:
        report = check_model(ck.config, ck.vocab, list(ck.labels), ck.model_state, kernels=args.kernels)
    except ValueError as exc:
        raise CliError(f"check: {exc}") from None
    if args.json:
        print(json.dumps(report))
        return 0
    c = ck.config
    tol = 1e-10 if c.dtype == "float64" else 1e-4
    verdict = "equal within rounding" if max(report["max_abs_diff_output"],
                                             report["max_abs_diff_grad"]) < tol else "DIFFERENT"
    print(f"{path}: {c.cell} {c.num_layers}x{c.hidden_size}{' bidirectional' if c.bidirectional else ''}, "
          f"{c.dtype}, on {report['batch']}\n"
          f"  reference            {report['reference']} with the same state_dict\n"
          f"  scratch kernels      {report['kernels']['name']}: {report['kernels']['how']}\n"
          f"  loss                 scratch {report['loss_scratch']:.6f}, "
          f"reference {report['loss_torch']:.6f}\n"
          f"  max |Δ output|       {report['max_abs_diff_output']:.3g}\n"
          f"  max |Δ gradient|     {report['max_abs_diff_grad']:.3g} ({report['worst_parameter']})\n"
          f"  {verdict} (float32 rounding is ~1e-6 relative)")
    return 0
