"""`workbench check`: a run's weights in torch.nn's layers against the scratch ones, on the run's own data.

The classic exercise "my hand-written RNN computes what nn.RNN computes", for any trained model:
the same state_dict goes into both implementations, one batch of the run's data goes through both,
and the largest differences in the outputs and in every parameter's gradient are reported.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

MAX_BATCH = 16  # streams (charlm) or names a check reads


def add_parser(sub: Any, parser_class: type) -> None:
    c = sub.add_parser("check", help="does the run's scratch model compute what torch.nn computes with "
                       "its weights? (largest difference in outputs and gradients)")
    c.add_argument("run", help="run directory, run id under --runs-dir, 'latest', or a .pt checkpoint")
    c.add_argument("--runs-dir", default="runs", help="where runs are (default runs)")
    c.add_argument("--json", action="store_true", help="print one JSON object: reference, "
                   "max_abs_diff_output, max_abs_diff_grad, and what was compared")


def compare(config: Any, vocab: Any, labels: list[str], state: dict[str, Any],
            batch: tuple[Any, ...]) -> dict[str, Any]:
    """Outputs and gradients of both implementations on `batch`, and their largest differences.

    `batch` is (tokens, targets) for a language model and (tokens, lengths, targets) for a
    classifier. Both models are in eval mode: dropout would draw different masks.
    """
    import torch
    import torch.nn.functional as F

    from .checkpoint import build_model
    from .torch_layers import REFERENCES

    if config.arch != "workbench":
        raise ValueError(f"the tutorial model {config.arch} has no torch.nn layer to check against")
    results = {}
    for impl in ("scratch", "torch"):
        model = build_model(config.updated(impl=impl), len(vocab), len(labels))
        model.load_state_dict(state)
        dtype = torch.float64 if config.dtype == "float64" else torch.float32
        model = model.to(dtype).eval()
        if config.task == "charlm":
            tokens, targets = batch
            logits, _ = model(tokens)
        else:
            tokens, lengths, targets = batch
            logits = model(tokens, lengths)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
        loss.backward()
        results[impl] = (logits.detach(), {n: p.grad for n, p in model.named_parameters()}, loss.item())
    (out_s, grads_s, loss_s), (out_t, grads_t, loss_t) = results["scratch"], results["torch"]
    diffs = {name: float((grads_s[name] - grads_t[name]).abs().max()) for name in grads_s}
    worst = max(diffs, key=diffs.get)
    return {"reference": REFERENCES[config.cell], "max_abs_diff_output": float((out_s - out_t).abs().max()),
            "max_abs_diff_grad": diffs[worst], "worst_parameter": worst, "loss_scratch": loss_s,
            "loss_torch": loss_t, "dtype": config.dtype}


def run_batch(config: Any, vocab: Any, labels: list[str], data: Any = None) -> tuple[tuple[Any, ...], str]:
    """A batch of the run's own data (its validation text or its test names), and what it is.

    `data` is the CharCorpus or NamesData a live run has loaded already; without it the files are read.
    """
    import torch

    from .data import NamesData, pad_batch, read_text, train_end

    if config.task == "charlm":
        if data is not None:  # ids already; a text is encoded only as far as the batch reads
            val, encode = data.val, (lambda part: part.long())
        else:
            text = read_text(config.data)
            val, encode = text[train_end(len(text)):], vocab.encode
        window = config.seq_len + 1
        streams = max(1, min(MAX_BATCH, config.batch_size, (len(val) - 1) // window))
        ids = encode(val[: streams * window]).reshape(streams, window).t()  # (T+1, B)
        return (ids[:-1], ids[1:]), f"{streams} x {config.seq_len} characters of the validation text"
    if data is None:
        data = NamesData.from_dir(config.data, seed=config.seed, dedupe=config.dedupe)
    if data.labels != labels:
        raise ValueError(f"{config.data}: its languages differ from the checkpoint's")
    pairs = data.test[:MAX_BATCH]
    tokens, lengths = pad_batch([n for n, _ in pairs], vocab)
    return (tokens, lengths, torch.tensor([c for _, c in pairs])), f"{len(pairs)} test names"


def check_model(config: Any, vocab: Any, labels: list[str], state: dict[str, Any], data: Any = None
                ) -> dict[str, Any]:
    """`compare` on a batch of the run's own data (`data`, when loaded already); ValueError says why not."""
    from .errors import DataError

    try:
        batch, what = run_batch(config, vocab, labels, data)
    except (DataError, OSError, ValueError) as exc:
        raise ValueError(f"the run's data cannot be read: {exc}") from None
    return {**compare(config, vocab, labels, state, batch), "batch": what}


def check_run(args: argparse.Namespace, fail: Any) -> int:
    from .checkpoint import load
    from .runs import RunNotFound, resolve_model

    try:
        path = resolve_model(args.run, args.runs_dir)
    except RunNotFound as exc:
        fail(f"check: {exc}")
    ck = load(path)
    try:
        report = check_model(ck.config, ck.vocab, list(ck.labels), ck.model_state)
    except ValueError as exc:
        fail(f"check: {exc}")
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
          f"  loss                 scratch {report['loss_scratch']:.6f}, torch {report['loss_torch']:.6f}\n"
          f"  max |Δ output|       {report['max_abs_diff_output']:.3g}\n"
          f"  max |Δ gradient|     {report['max_abs_diff_grad']:.3g} ({report['worst_parameter']})\n"
          f"  {verdict} (float32 rounding is ~1e-6 relative)")
    return 0
