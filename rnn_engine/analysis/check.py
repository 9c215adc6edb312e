"""The torch.nn check: a run's weights in torch.nn's layers against the scratch ones, on the run's own data.

The classic exercise "my hand-written RNN computes what nn.RNN computes", for any trained model:
the same state_dict goes into both implementations, one batch of the run's data goes through both,
and the largest differences in the outputs and in every parameter's gradient are reported. Torch
is imported inside the functions, so the report's one-line description can be read without it.
"""

from __future__ import annotations

from typing import Any

MAX_BATCH = 16  # streams (charlm) or names a check reads
# under Triton's interpreter every kernel launch is Python: a smaller batch keeps it to seconds
INTERPRETED_BATCH, INTERPRETED_STEPS = 4, 32


def compare(config: Any, vocab: Any, labels: list[str], state: dict[str, Any],
            batch: tuple[Any, ...], kernels: str | None = None) -> dict[str, Any]:
    """Outputs and gradients of both implementations on `batch`, and their largest differences.

    `batch` is (tokens, targets) for a language model and (tokens, lengths, targets) for a
    classifier. Both models are in eval mode: dropout would draw different masks. With
    `kernels="triton"` the scratch layers run on the Triton kernels: on a GPU natively, else under
    Triton's interpreter on the CPU; TF32 is off for both sides.
    """
    import torch
    import torch.nn.functional as F

    from ..config import MIN_CELLS
    from ..model.checkpoint import build_model
    from ..nn import gpu_path
    from ..nn.minimal import MinRecurrent
    from ..nn.recurrent import Recurrent
    from ..nn.torch_layers import REFERENCES

    if config.arch != "workbench":
        raise ValueError(f"the tutorial model {config.arch} has no torch.nn layer to check against")
    device = torch.device("cuda" if kernels == "triton" and torch.cuda.is_available() else "cpu")
    # torch.nn has no minGRU or minLSTM: their kernels are checked against their per-step equations
    minimal = config.cell in MIN_CELLS
    results = {}
    with gpu_path.ieee_fp32():
        for impl in ("scratch", "torch"):
            model = build_model(config.updated(impl="scratch" if minimal else impl), len(vocab), len(labels))
            model.load_state_dict(state)
            dtype = torch.float64 if config.dtype == "float64" else torch.float32
            model = model.to(device, dtype).eval()
            for layer in model.modules():
                if isinstance(layer, (Recurrent, MinRecurrent)):
                    layer.kernels = kernels
                    layer.use_fused = not (minimal and impl == "torch")
            moved = [t.to(device) for t in batch]
            if config.task == "charlm":
                tokens, targets = moved
                logits, _ = model(tokens)
            else:
                tokens, lengths, targets = moved
                logits = model(tokens, lengths)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
            loss.backward()
            results[impl] = (logits.detach().cpu(), {n: p.grad.cpu() for n, p in model.named_parameters()},
                             loss.item())
    (out_s, grads_s, loss_s), (out_t, grads_t, loss_t) = results["scratch"], results["torch"]
    diffs = {name: float((grads_s[name] - grads_t[name]).abs().max()) for name in grads_s}
    worst = max(diffs, key=diffs.get)
    return {"reference": REFERENCES[config.cell], "max_abs_diff_output": float((out_s - out_t).abs().max()),
            "max_abs_diff_grad": diffs[worst], "worst_parameter": worst, "loss_scratch": loss_s,
            "loss_torch": loss_t, "dtype": config.dtype, "kernels": _kernels_used(kernels, device)}


def _kernels_used(kernels: str | None, device: Any) -> dict[str, str]:
    """Which kernels the scratch side ran, and how."""
    from ..nn import fused

    if kernels == "triton":
        how = (f"natively on {device}" if device.type == "cuda" else
               "under Triton's interpreter on the CPU (TRITON_INTERPRET=1): this proves the kernels' "
               "logic, not their speed or their compile on a GPU")
        return {"name": "triton", "how": how}
    return {"name": "fused" if fused.load() else "per-step", "how": fused.status()}


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


def check_model(config: Any, vocab: Any, labels: list[str], state: dict[str, Any], data: Any = None,
                kernels: str | None = None) -> dict[str, Any]:
    """`compare` on a batch of the run's own data (`data`, when loaded already); ValueError says why not.

    `kernels="triton"`: the scratch side on the Triton kernels; without a GPU, under Triton's
    interpreter, which must be chosen before Triton is first imported in this process.
    """
    from ..errors import DataError
    from ..nn import gpu_path

    if kernels not in (None, "triton"):
        raise ValueError(f"kernels must be 'triton' or left out, not {kernels!r}")
    if kernels == "triton":
        import torch

        if not torch.cuda.is_available() and (why := gpu_path.use_interpreter()) is not None:
            raise ValueError(f"the Triton kernels cannot run on this CPU: {why}")
        if (missing := gpu_path.triton_missing()) is not None:
            raise ValueError(f"the Triton kernels cannot run: {missing} (pip install triton)")
    try:
        batch, what = run_batch(config, vocab, labels, data)
    except (DataError, OSError, ValueError) as exc:
        raise ValueError(f"the run's data cannot be read: {exc}") from None
    if kernels == "triton" and gpu_path.interpreted():
        batch, what = _smaller(config, batch)
    return {**compare(config, vocab, labels, state, batch, kernels), "batch": what}


def _smaller(config: Any, batch: tuple[Any, ...]) -> tuple[tuple[Any, ...], str]:
    """The batch cut to what Triton's interpreter runs in seconds."""
    why = "(a small batch: the interpreter is slow)"
    if config.task == "charlm":  # (T, B) ids and targets
        tokens, targets = (t[:INTERPRETED_STEPS, :INTERPRETED_BATCH] for t in batch)
        what = f"{tokens.shape[1]} x {tokens.shape[0]} characters of the validation text {why}"
        return (tokens, targets), what
    tokens, lengths, targets = batch  # (T, B) ids, (B,) lengths and labels
    kept = (tokens[:, :INTERPRETED_BATCH], lengths[:INTERPRETED_BATCH], targets[:INTERPRETED_BATCH])
    return kept, f"{len(kept[2])} test names {why}"


def describe_check(report: dict[str, Any]) -> str:
    """One line for a check report (check_model's), for ctl and the app's activity log."""
    if "error" in report:
        return f"check: {report['error']}"
    return (f"against {report['reference']} with the same weights, on {report.get('batch', 'a batch')}: "
            f"max |Δ output| {report['max_abs_diff_output']:.3g}, max |Δ gradient| "
            f"{report['max_abs_diff_grad']:.3g} ({report['worst_parameter']})")
