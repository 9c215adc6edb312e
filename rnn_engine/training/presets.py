"""The classic tutorials' models and training, and the minimal RNNs' paper setting, as presets:
`--preset NAME`, the form, `workbench presets`.

Each preset sets the model (`arch`, `cell`) and the settings its source used; flags given beside it
win. The reported figures are the sources' own, on their own data and splits.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from typing import Any

from ..config import PRESET_NAMES, RunConfig


@dataclass(frozen=True)
class Preset:
    """A source's model and training (a tutorial's, a paper's), and what the source reported."""

    name: str
    task: str
    summary: str
    values: dict[str, Any]
    reported: str


# how the character tutorials trained, and how the names tutorial did (for both of its models)
CHAR_TRAINING = {"num_layers": 1, "seq_len": 25, "batch_size": 64, "carry_state": False,
                 "optimizer": "rmsprop", "lr": 1e-3, "lr_schedule": "constant", "clip": 3.0, "dropout": 0.0}
NAMES_TRAINING = {"batch_size": 1, "epochs": 2, "time_budget": 0.0, "optimizer": "adam", "lr": 1e-3,
                  "lr_schedule": "constant", "clip": 1.0, "dropout": 0.0}

PRESETS = {p.name: p for p in [
    Preset("tutorial-index-rnn", "charlm",
           "character LM reading each character's index as one number: Linear(1, H) without bias, "
           "h = tanh(i2h + h2h), h2o readout; hidden 256, sequences of 25, batch 64, the hidden state "
           "zeroed at every batch, RMSprop lr 1e-3, gradient norm clipped at 3, a sample per epoch",
           {"arch": "index-rnn", "hidden_size": 256, **CHAR_TRAINING},
           "no loss figure reported (trained on a list of dinosaur names)"),
    Preset("tutorial-tensor-rnn", "charlm",
           "character LM from raw tensors: an embedding table (randn) of 100, h = tanh(x Wxh + h Whh + bh), "
           "hidden 100; trained like tutorial-index-rnn",
           {"arch": "tensor-rnn", "hidden_size": 100, **CHAR_TRAINING},
           "no loss figure reported"),
    Preset("tutorial-concat-rnn", "names",
           "name classifier on one-hot letters: hidden = sigmoid(Linear([x, h])), output = Linear([x, h]) "
           "at the last letter, kaiming-uniform initial hidden, hidden 128; one name at a time, 2 epochs, "
           "Adam lr 1e-3, gradient norm clipped at 1, stratified 90/10 split",
           {"arch": "concat-rnn", "hidden_size": 128, "num_layers": 1, **NAMES_TRAINING},
           "72.2% test accuracy"),
    *[Preset(f"paper-{cell}", "charlm",
             f"{cell} language model (Feng et al. 2024, 'Were RNNs All We Needed?') in nanoGPT's "
             "character-level Shakespeare settings (config/train_shakespeare_char.py: context 256, batch 64, "
             "width 384, dropout 0.2, lr 1e-3), with 3 residual blocks where nanoGPT has 6 "
             "attention layers: what two cores train in minutes",
             {"arch": "workbench", "cell": cell, "hidden_size": 384, "num_layers": 3, "seq_len": 256,
              "batch_size": 64, "dropout": 0.2, "lr": 1e-3, "optimizer": "adam", "carry_state": True},
             "the paper gives test losses on Shakespeare for its minGRU and minLSTM language models; none "
             "is repeated here, and these settings are nanoGPT's, not the paper's own")
      for cell in ("mingru", "minlstm")],
    Preset("tutorial-gru", "names",
           "the same data and training with a 2-layer GRU (hidden 256) and a linear head",
           {"arch": "workbench", "cell": "gru", "hidden_size": 256, "num_layers": 2, **NAMES_TRAINING},
           "81.4% test accuracy"),
]}


assert set(PRESETS) == set(PRESET_NAMES) - {""}


class PresetError(ValueError):
    """An unknown preset, or one for the other task."""


def apply_preset(config: RunConfig, name: str) -> RunConfig:
    """`config` with the preset's model and settings (and its name) in place."""
    preset = PRESETS.get(name)
    if preset is None:
        raise PresetError(f"unknown preset {name!r}; workbench presets lists them: {', '.join(PRESETS)}")
    if preset.task != config.task:
        task = "a character language model" if preset.task == "charlm" else "the name classifier"
        command = "train" if preset.task == "charlm" else "train-names"
        raise PresetError(f"preset {name} is {task}: use workbench {command}")
    return config.updated(**preset.values, preset=name)


def describe_presets() -> str:
    """What `workbench presets` prints."""
    rows = []
    for p in PRESETS.values():
        command = "train --corpus FILE" if p.task == "charlm" else "train-names --data DIR"
        summary = textwrap.fill(p.summary, 98, initial_indent="  ", subsequent_indent="  ")
        rows.append(f"{p.name}\n{summary}\n  reported: {p.reported}\n"
                    f"  workbench {command} --preset {p.name}")
    return "\n\n".join(rows)
