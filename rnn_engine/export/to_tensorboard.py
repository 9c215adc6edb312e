"""Runs as TensorBoard event files: scalars against the step, the samples as text, the settings as hparams.

Each run gets a directory of its own under the chosen one, named by its run id, so `tensorboard
--logdir DIR` lists the runs side by side and its HParams tab compares them by their final figures.
Written with tensorboardX, which needs no TensorFlow.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from .history import RunHistory

# the settings TensorBoard's HParams tab shows: scalars and strings only
HParam = bool | int | float | str


def _hparams(config: dict[str, Any]) -> dict[str, HParam]:
    out: dict[str, HParam] = {}
    for key, value in sorted(config.items()):
        if key == "data":
            value = Path(str(value)).name  # the corpus by its name: a path means little in a comparison
        finite = not isinstance(value, float) or math.isfinite(value)
        if isinstance(value, (bool, int, float, str)) and finite:
            out[key] = value
    return out


def write_tensorboard(histories: list[RunHistory], logdir: str | Path) -> list[Path]:
    """Write each run's event file under `logdir`/<run id>; returns the directories written."""
    from tensorboardX import SummaryWriter
    from tensorboardX.summary import hparams

    written = []
    for h in histories:
        target = Path(logdir) / h.run_id
        unit = "chars_per_s" if h.task == "charlm" else "names_per_s"
        with SummaryWriter(logdir=str(target), flush_secs=3600) as writer:
            for s in h.steps:
                if math.isfinite(s.loss):
                    writer.add_scalar("train/loss", s.loss, s.step)
                writer.add_scalar("train/lr", s.lr, s.step)
                if math.isfinite(s.grad_norm):
                    writer.add_scalar("train/grad_norm", s.grad_norm, s.step)
                writer.add_scalar(f"train/{unit}", s.items_per_s, s.step)
            for e in h.evaluations:
                if math.isfinite(e.val_loss):
                    writer.add_scalar("val/loss", e.val_loss, e.step)
                if e.val_accuracy is not None:
                    writer.add_scalar("val/accuracy", e.val_accuracy, e.step)
                if e.balanced_accuracy is not None:
                    writer.add_scalar("val/balanced_accuracy", e.balanced_accuracy, e.step)
            for g in h.gradients:
                for layer, norm in g.per_layer.items():
                    writer.add_scalar(f"gradients/{layer.replace(' ', '_')}", norm, g.step)
            for step, title, text in h.samples:
                # markdown: four spaces make a code block, which keeps the text's own lines
                body = "\n".join("    " + line for line in text.splitlines())
                writer.add_text("samples", f"**{title}, step {step}**\n\n{body}", step)
            metrics = {f"hparams/{k}": v for k, v in h.final_metrics().items()}
            exp, ssi, sei = hparams(_hparams(h.config), metrics)
            for summary in (exp, ssi, sei):
                writer.file_writer.add_summary(summary)
            last = h.steps[-1].step if h.steps else 0
            for tag, value in metrics.items():
                writer.add_scalar(tag, value, last)
        written.append(target)
    return written
