"""minGRU and minLSTM through everything else: training, checkpoints, generation, the classifier,
the gradient panes, the Inside view, the torch.nn check and the command line."""

from __future__ import annotations

import json

import pytest
import torch

import rnn_engine
from rnn_engine.analysis.check import compare
from rnn_engine.analysis.gradients import grad_norms, timestep_grad_norms
from rnn_engine.analysis.inside import inspection
from rnn_engine.config import default_config
from rnn_engine.data.vocab import Vocab
from rnn_engine.model.checkpoint import build_model
from rnn_engine.model.networks import ResidualLM
from rnn_engine.training.trainer import Trainer

from ..conftest import TINY_FLAGS, workbench

TEXT = "the quick brown fox jumps over the lazy dog; " * 40


def tiny(corpus, cell: str, **kw):
    base = dict(data=str(corpus), cell=cell, hidden_size=16, num_layers=2, dropout=0.1, seq_len=12,
                batch_size=4, epochs=1, time_budget=0.0, max_steps=6, sample_length=20, device="cpu",
                lr=1e-2, precision="fp32", eval_interval=0.0)
    return default_config("charlm", **{**base, **kw})


@pytest.mark.parametrize("cell", ["mingru", "minlstm"])
def test_a_language_model_trains_saves_loads_and_generates(tiny_corpus, tmp_path, cell):
    trainer = Trainer(tiny(tiny_corpus, cell), runs_dir=tmp_path / "runs", run_id=cell)
    summary = trainer.run()
    assert summary["steps"] == 6 and summary["val_loss"] < 5
    assert isinstance(trainer.model, ResidualLM)
    model = rnn_engine.load(cell, runs_dir=tmp_path / "runs")
    text = model.generate("the ", length=30, temperature=0.8)
    assert len(text) >= 30


def test_the_names_classifier_reads_padded_names_with_a_minimal_stack(names_dir, tmp_path):
    cfg = default_config("names", data=str(names_dir), cell="minlstm", hidden_size=16, epochs=1,
                         batch_size=8, device="cpu", precision="fp32", dropout=0.0)
    summary = Trainer(cfg, runs_dir=tmp_path / "runs", run_id="names").run()
    assert 0.0 <= summary["test_accuracy"] <= 1.0
    answers = rnn_engine.load("names", runs_dir=tmp_path / "runs").classify(["Nakamura"], top_k=2)
    assert len(answers[0]) == 2


def test_gradient_panes_group_blocks_by_layer_and_read_every_step():
    torch.manual_seed(0)
    model = ResidualLM(12, "mingru", 8, 2)
    tokens = torch.randint(0, 12, (10, 3))
    logits, _ = model(tokens)
    logits.sum().backward()
    _, _, per_layer = grad_norms(model)
    assert {"layer 0", "layer 1", "embed", "head", "norm"} <= set(per_layer)
    per_t = timestep_grad_norms(model, tokens, torch.randint(0, 12, (10, 3)))
    # the last step's loss reaches every earlier state of the top layer through the recurrence
    assert len(per_t) == 10 and all(v > 0 for v in per_t)


@pytest.mark.parametrize("cell", ["mingru", "minlstm"])
def test_the_inside_view_shows_units_and_gates(cell):
    vocab = Vocab.from_text(TEXT)
    model = build_model(default_config("charlm", data="x", cell=cell, hidden_size=8, num_layers=2,
                                       dropout=0.0), len(vocab))
    result = inspection(model.eval(), vocab, TEXT[:200])
    assert result["cell"] == cell and result["layers"] == 2 and result["activations"]
    gates = result["saturation"]
    names = {"mingru": {"z (update)"}, "minlstm": {"f' (keep)", "i' (write)"}}[cell]
    assert set(gates["layer 0"]) == names and set(gates["layer 1"]) == names


def test_the_check_holds_the_kernels_to_the_per_step_equations(tiny_corpus, kernels):
    vocab = Vocab.from_text(tiny_corpus.read_text())
    config = tiny(tiny_corpus, "mingru")
    state = build_model(config, len(vocab)).state_dict()
    batch = (torch.randint(0, len(vocab), (12, 3)), torch.randint(0, len(vocab), (12, 3)))
    report = compare(config, vocab, [], state, batch)
    assert report["reference"] == "minGRU's per-step PyTorch equations"
    assert report["max_abs_diff_output"] < 1e-5 and report["max_abs_diff_grad"] < 1e-5


def test_the_command_line_trains_a_minimal_cell(tiny_corpus, tmp_path):
    r = workbench("train", "--corpus", str(tiny_corpus), "--cell", "mingru", "--epochs", "1", "--max-steps",
                  "3", "--runs-dir", str(tmp_path / "runs"), "--run-id", "cli", "--json", *TINY_FLAGS)
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert summary["steps"] == 3
    log = (tmp_path / "runs" / "cli" / "events.jsonl").read_text().splitlines()
    started = [json.loads(line) for line in log if '"RunStarted"' in line][0]
    assert started["recurrent_path"].startswith("mingru: one float32 GEMM per layer")
    r = workbench("train", "--corpus", str(tiny_corpus), "--cell", "minlstm", "--impl", "torch", "--runs-dir",
                  str(tmp_path / "runs"))
    assert r.returncode == 2 and "torch.nn has no minlstm" in r.stderr
