"""The torch.nn check: a run's weights in torch.nn's layers against the scratch ones, on the run's own data.

The classic exercise "my hand-written RNN computes what nn.RNN computes", for any trained model:
the same state_dict goes into both implementations, one batch of the run's data goes through both,
and the largest differences in the outputs and in every parameter's gradient are reported. Torch
is imported inside the functions, so the report's one-line description can be read without it.
"""

from __future__ import annotations

from typing import Any

MAX_BATCH = 16  # streams (charlm) or names a check reads


def compare(config: Any, vocab: Any, labels: list[str], state: dict[str, Any],
            batch: tuple[Any, ...]) -> dict[str, Any]:
    """Outputs and gradients of both implementations on `batch`, and their largest differences.

    `batch` is (tokens, targets) for a language model and (tokens, lengths, targets) for a
    classifier. Both models are in eval mode: dropout would draw different masks.
    """
    import torch
    import torch.nn.functional as F

    from ..model.checkpoint import build_model
    from ..nn.torch_layers import REFERENCES

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

    from ..data.names import NamesData, pad_batch
    from ..data.text import read_text, train_end

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
    from ..errors import DataError

    try:
        batch, what = run_batch(config, vocab, labels, data)
    except (DataError, OSError, ValueError) as exc:
        raise ValueError(f"the run's data cannot be read: {exc}") from None
    return {**compare(config, vocab, labels, state, batch), "batch": what}


def describe_check(report: dict[str, Any]) -> str:
    """One line for a check report (check_command.compare), for ctl and the app's activity log."""
    if "error" in report:
        return f"check: {report['error']}"
    return (f"against {report['reference']} with the same weights, on {report.get('batch', 'a batch')}: "
            f"max |Δ output| {report['max_abs_diff_output']:.3g}, max |Δ gradient| "
            f"{report['max_abs_diff_grad']:.3g} ({report['worst_parameter']})")
