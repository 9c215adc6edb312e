"""Runs where people already look at them: TensorBoard event files and one CSV table for many runs.

Everything comes from the runs' own files (events.jsonl, config.json); nothing needs the run to be
alive or a model to be loaded. `history` reads a run into plain series, `to_tensorboard` writes
them as TensorBoard scalars, text and hparams (one directory per run, so TensorBoard compares
them), and `to_csv` as one row per logged step or evaluation, with the run id and the settings that
differ between the runs as columns.
"""

from __future__ import annotations

from .history import RunHistory, read_history
from .to_csv import write_csv
from .to_tensorboard import write_tensorboard

__all__ = ["RunHistory", "read_history", "write_csv", "write_tensorboard"]
