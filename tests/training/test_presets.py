"""The presets (the classic tutorials', the minimal RNNs' paper setting): each builds and trains, and
each tutorial model computes its equations."""

from __future__ import annotations

import json
import math

import pytest
import torch

from rnn_engine import Trainer
from rnn_engine.config import default_config
from rnn_engine.model.networks import NameClassifier
from rnn_engine.model.tutorials import ConcatRNNClassifier, IndexRNNLM, TensorRNNLM
from rnn_engine.training.presets import PRESETS, PresetError, apply_preset

from ..conftest import workbench


@pytest.mark.parametrize("name", list(PRESETS))
def test_each_preset_builds_and_trains_a_few_steps(name, tiny_corpus, names_dir, tmp_path):
    preset = PRESETS[name]
    data = tiny_corpus if preset.task == "charlm" else names_dir
    config = apply_preset(default_config(preset.task, data=str(data), device="cpu"), name)
    # small enough for the tiny corpus: a window of 256 (the paper presets') fits it twice
    config = config.updated(max_steps=4, time_budget=0.0, epochs=1, batch_size=min(config.batch_size, 8),
                            hidden_size=min(config.hidden_size, 32), sample_length=20,
                            seq_len=min(config.seq_len, 25))
    trainer = Trainer(config.checked(), runs_dir=tmp_path, run_id=name)
    summary = trainer.run()
    assert summary["steps"] == 4 and math.isfinite(summary["train_loss"])
    assert trainer.config.preset == name and trainer.config.arch == preset.values["arch"]


def test_the_paper_presets_train_the_parallel_cells_in_nanogpt_s_shakespeare_settings():
    cfg = apply_preset(default_config("charlm", data="x"), "paper-minlstm")
    assert (cfg.cell, cfg.hidden_size, cfg.num_layers, cfg.seq_len, cfg.batch_size, cfg.dropout, cfg.lr) == \
        ("minlstm", 384, 3, 256, 64, 0.2, 1e-3)


def test_presets_set_what_their_tutorials_did(names_dir):
    cfg = apply_preset(default_config("names", data=str(names_dir)), "tutorial-concat-rnn")
    assert (cfg.arch, cfg.batch_size, cfg.epochs, cfg.optimizer, cfg.lr, cfg.clip) == \
        ("concat-rnn", 1, 2, "adam", 1e-3, 1.0)
    cfg = apply_preset(default_config("charlm", data="x"), "tutorial-index-rnn")
    assert (cfg.hidden_size, cfg.seq_len, cfg.batch_size, cfg.carry_state, cfg.optimizer, cfg.clip) == \
        (256, 25, 64, False, "rmsprop", 3.0)
    with pytest.raises(PresetError, match="train-names"):
        apply_preset(default_config("charlm", data="x"), "tutorial-gru")


def test_index_rnn_reads_the_index_as_one_number():
    model = IndexRNNLM(vocab_size=3, hidden_size=2)
    with torch.no_grad():
        model.rnn.i2h.weight.copy_(torch.tensor([[0.5], [-0.25]]))
        model.rnn.h2h.weight.copy_(torch.tensor([[0.1, 0.2], [0.3, -0.4]]))
        model.rnn.h2h.bias.copy_(torch.tensor([0.05, -0.05]))
        model.h2o.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
        model.h2o.bias.zero_()
    logits, h_n = model(torch.tensor([[2], [1]]))
    # by hand: h1 = tanh(W_i2h * 2 + b), h2 = tanh(W_i2h * 1 + W_h2h h1 + b)
    h1 = [math.tanh(0.5 * 2 + 0.05), math.tanh(-0.25 * 2 - 0.05)]
    h2 = [math.tanh(0.5 + 0.1 * h1[0] + 0.2 * h1[1] + 0.05),
          math.tanh(-0.25 + 0.3 * h1[0] - 0.4 * h1[1] - 0.05)]
    torch.testing.assert_close(h_n[0, 0], torch.tensor(h2), atol=1e-6, rtol=0)
    torch.testing.assert_close(logits[1, 0], torch.tensor([h2[0], h2[1], h2[0] + h2[1]]), atol=1e-6, rtol=0)


def test_tensor_rnn_is_an_embedding_then_tanh():
    model = TensorRNNLM(vocab_size=3, hidden_size=2, embedding_size=2)
    with torch.no_grad():
        model.rnn.embedding.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
        model.rnn.w_xh.copy_(torch.tensor([[0.5, 0.0], [0.0, -0.5]]))
        model.rnn.w_hh.copy_(torch.tensor([[0.2, 0.1], [0.0, 0.3]]))
        model.rnn.b_h.copy_(torch.tensor([0.1, 0.0]))
        model.w_hy.copy_(torch.eye(2, 3))
        model.b_y.zero_()
    logits, h_n = model(torch.tensor([[2], [0]]))
    # x W_xh for E[2] = [1, 1] is [0.5, -0.5]; then E[0] = [1, 0] gives [0.5, 0]
    h1 = [math.tanh(0.5 + 0.1), math.tanh(-0.5)]
    h2 = [math.tanh(0.5 + 0.2 * h1[0] + 0.1), math.tanh(0.1 * h1[0] + 0.3 * h1[1])]
    torch.testing.assert_close(h_n[0, 0], torch.tensor(h2), atol=1e-6, rtol=0)
    torch.testing.assert_close(logits[1, 0], torch.tensor([h2[0], h2[1], 0.0]), atol=1e-6, rtol=0)


def test_concat_rnn_reads_one_hot_letters_beside_the_hidden_state():
    model = ConcatRNNClassifier(vocab_size=2, num_classes=2, hidden_size=1)
    with torch.no_grad():
        model.rnn.i2h.weight.copy_(torch.tensor([[1.0, -1.0, 0.5]]))  # [x0, x1, h]
        model.rnn.i2h.bias.fill_(0.1)
        model.rnn.h0.fill_(0.3)
        model.i2o.weight.copy_(torch.tensor([[1.0, 0.0, 2.0], [0.0, 1.0, -1.0]]))
        model.i2o.bias.zero_()
    # the names "01" and "1" in one padded batch: the output reads the last letter and h before it
    logits = model(torch.tensor([[0, 1], [1, 0]]), torch.tensor([2, 1]))
    sig = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    h1 = sig(1.0 + 0.5 * 0.3 + 0.1)  # after "0"
    first = [0.0 + 2.0 * h1, 1.0 - h1]  # last letter "1", h before it h1
    second = [0.0 + 2.0 * 0.3, 1.0 - 0.3]  # "1": the last letter is the first, h before it is h0
    torch.testing.assert_close(logits, torch.tensor([first, second]), atol=1e-6, rtol=0)


def test_tutorial_gru_is_the_workbench_classifier_with_the_tutorials_shape(names_dir):
    cfg = apply_preset(default_config("names", data=str(names_dir)), "tutorial-gru")
    trainer = Trainer(cfg.updated(max_steps=1), run_id="gru", runs_dir=names_dir.parent / "runs")
    assert isinstance(trainer.model, NameClassifier)
    assert trainer.model.rnn.num_layers == 2 and trainer.model.rnn.hidden_size == 256


def test_presets_command_and_flag(tiny_corpus, tmp_path):
    listing = workbench("presets").stdout
    assert all(name in listing for name in PRESETS) and "72.2%" in listing and "81.4%" in listing
    r = workbench("train", "--corpus", str(tiny_corpus), "--preset", "tutorial-tensor-rnn",
                  "--max-steps", "3", "--batch-size", "4", "--runs-dir", str(tmp_path), "--json")
    assert r.returncode == 0, r.stderr
    wrong = workbench("train", "--corpus", str(tiny_corpus), "--preset", "tutorial-gru")
    assert wrong.returncode == 2 and "train-names" in wrong.stderr
    run = json.loads(r.stdout.strip().splitlines()[-1])["run_dir"]
    check = workbench("check", run)  # a tutorial's own model has no torch.nn twin
    assert check.returncode == 2 and "no torch.nn layer" in check.stderr
