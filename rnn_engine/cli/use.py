"""`workbench sample` and `classify`: a trained model from its checkpoint, for text or for names."""

from __future__ import annotations

import argparse
import json
import math
import time
from typing import Any

from .parsing import CliError, add_run_argument, model_path, say


def add_parsers(sub: Any) -> None:
    s = sub.add_parser("sample", help="generate text from a language model: a run's or a checkpoint's")
    add_run_argument(s, "checkpoint")
    s.set_defaults(func=sample)
    s.add_argument("--prime", default="", help="text the model reads before it starts writing")
    s.add_argument("--length", type=int, default=500, help="characters to write (default 500)")
    s.add_argument("--temperature", type=float, default=0.8, help="below 1 picks likelier characters, "
                   "above 1 takes more risks (default 0.8)")
    s.add_argument("--top-k", type=int, default=0, metavar="K", help="draw only from the K likeliest "
                   "characters at each step (default 0: from all)")
    s.add_argument("--seed", type=int, default=None, help="the same seed writes the same text (default: "
                   "a new one each time)")
    s.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or mps (default cpu)")
    s.add_argument("--lines", type=int, default=0, metavar="N", help="instead of --length characters, N "
                   "complete lines, each from a line start, those not in the training text marked + "
                   "(for one-item-per-line corpora: names, words)")

    c = sub.add_parser("classify", help="the likeliest languages of surnames, from a name classifier")
    add_run_argument(c, "checkpoint")
    c.set_defaults(func=classify)
    c.add_argument("names", nargs="+", metavar="NAME", help="surnames to classify, each its own argument")
    c.add_argument("--top-k", type=int, default=3, metavar="K", help="languages to show per name (default 3)")
    c.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or mps (default cpu)")
    c.add_argument("--json", action="store_true", help="one JSON object: each name's [language, "
                   "probability] pairs")


def sample(args: argparse.Namespace, argv: list[str]) -> int:
    import torch

    from ..model.checkpoint import load
    from ..model.sampling import generate
    from ..training.devices import resolve_device

    if args.length < 0:
        raise CliError("sample: --length must be >= 0")
    if not (args.temperature > 0 and math.isfinite(args.temperature)):
        raise CliError("sample: --temperature must be a number > 0")
    ck = load(model_path(args.checkpoint, args.runs_dir, "sample"))
    if ck.config.task != "charlm":
        raise CliError(f"sample: {args.checkpoint} is a name classifier; use 'workbench classify'")
    model = ck.build_model(resolve_device(args.device))
    g = torch.Generator()
    g.manual_seed(args.seed if args.seed is not None else int(time.time_ns() % 2**31))
    if args.lines:
        return _sample_lines(args, ck, model, g)
    print(generate(model, ck.vocab, args.length, args.prime, args.temperature, args.top_k, g))
    return 0


def _sample_lines(args: argparse.Namespace, ck: Any, model: Any, g: Any) -> int:
    """Complete lines, each marked + when the training text does not hold it (a new name, say)."""
    from ..data.text import read_text, train_end
    from ..errors import DataError
    from ..model.sampling import generate_lines

    if args.lines < 0 or args.prime:
        raise CliError("sample: --lines takes a count >= 1 and no --prime (each line starts a line)")
    try:
        text = read_text(ck.config.data)
    except (DataError, OSError) as exc:
        raise CliError(f"sample --lines: the training text is needed to tell new lines: {exc}") from None
    seen = {line.strip() for line in text[: train_end(len(text))].splitlines()}
    lines = generate_lines(model, ck.vocab, args.lines, args.temperature, args.top_k, g)
    new = 0
    for line in lines:
        fresh = line.strip() not in seen
        new += fresh
        print(f"{'+' if fresh else ' '} {line}")
    say(f"{new} of {len(lines)} lines are not in the training text (marked +)")
    return 0


def classify(args: argparse.Namespace, argv: list[str]) -> int:
    from ..model.checkpoint import load
    from ..model.sampling import classify
    from ..training.devices import resolve_device

    if args.top_k < 1:
        raise CliError("classify: --top-k must be at least 1")
    ck = load(model_path(args.checkpoint, args.runs_dir, "classify"))
    if ck.config.task != "names":
        raise CliError(f"classify: {args.checkpoint} is a language model; use 'workbench sample'")
    model = ck.build_model(resolve_device(args.device))
    results = classify(model, ck.vocab, ck.labels, args.names, args.top_k)
    if args.json:
        print(json.dumps({n: [[lab, round(p, 6)] for lab, p in r] for n, r in zip(args.names, results)}))
        return 0
    for name, r in zip(args.names, results):
        print(f"{name}: " + ", ".join(f"{lab} {p:.1%}" for lab, p in r))
    return 0
