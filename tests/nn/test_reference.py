"""torch.nn as the reference: --impl torch trains the same model, checkpoints cross over, `check` compares."""

from __future__ import annotations

import json

import torch

from rnn_engine import Trainer
from rnn_engine.config import RunConfig, default_config
from rnn_engine.control.client import RunClient
from rnn_engine.events import GradientsMeasured
from rnn_engine.model import checkpoint as ckpt_io
from rnn_engine.model.sampling import classify
from rnn_engine.nn.recurrent import Recurrent
from rnn_engine.nn.torch_layers import TorchGRU, TorchLSTM, as_scratch

from ..conftest import workbench


def tiny_lm(corpus, **kw):
    base = dict(task="charlm", data=str(corpus), hidden_size=32, num_layers=2, seq_len=16, batch_size=4,
                lr=1e-2, time_budget=0.0, epochs=1, sample_length=20, seed=3, device="cpu", dropout=0.0,
                precision="fp32")
    base.update(kw)
    return RunConfig(**base)


def test_impl_torch_trains_and_resumes_a_scratch_checkpoint(tiny_corpus, tmp_path):
    scratch = Trainer(tiny_lm(tiny_corpus, max_steps=5), runs_dir=tmp_path, run_id="scratch")
    assert scratch.run()["impl"] == "scratch"
    events = []
    cfg = tiny_lm(tiny_corpus, impl="torch", max_steps=10)
    resumed = Trainer(cfg, runs_dir=tmp_path, run_id="torch", resume=scratch.run_dir / "last.pt",
                      sink=events.append, diag_every=1)
    assert isinstance(resumed.model.rnn, TorchGRU) and resumed.step == 5
    # the same weights read the same validation text to the same loss in either implementation
    torch.testing.assert_close(resumed.evaluate()["val_loss"], scratch.evaluate()["val_loss"],
                               atol=1e-5, rtol=0)
    summary = resumed.run()
    assert summary["impl"] == "torch" and summary["steps"] == 10
    # per-step gradients come from a scratch twin sharing the torch layer's weights
    assert any(isinstance(e, GradientsMeasured) and len(e.per_timestep) == 16 for e in events)
    back = Trainer(tiny_lm(tiny_corpus, max_steps=12), runs_dir=tmp_path, run_id="back",
                   resume=resumed.run_dir / "last.pt")
    assert isinstance(back.model.rnn, Recurrent) and back.run()["steps"] == 12


def test_a_scratch_twin_shares_the_torch_layers_weights():
    layer = TorchLSTM(5, 8, 2, bidirectional=True)
    twin = as_scratch(layer)
    assert all(twin._parameters[n] is p for n, p in layer.named_parameters())
    x = torch.randn(7, 3, 5)
    out, (h, c) = layer(x)
    out2, (h2, c2) = twin(x)
    torch.testing.assert_close(out2, out, atol=1e-5, rtol=0)
    torch.testing.assert_close(c2, c, atol=1e-5, rtol=0)


def test_check_reports_the_largest_differences_of_a_trained_run(tiny_corpus, tmp_path):
    trainer = Trainer(tiny_lm(tiny_corpus, max_steps=20, cell="lstm"), runs_dir=tmp_path, run_id="lstm")
    trainer.run()
    r = workbench("check", str(trainer.run_dir), "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["reference"] == "torch.nn.LSTM"
    assert 0 <= report["max_abs_diff_output"] < 1e-4 and 0 <= report["max_abs_diff_grad"] < 1e-4
    assert report["kernels"]["name"] in ("fused", "per-step")
    text = workbench("check", str(trainer.run_dir))
    assert "equal within rounding" in text.stdout
    # the GPU path's kernels on the same weights, here under Triton's interpreter
    r = workbench("check", str(trainer.run_dir), "--kernels", "triton", "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["kernels"]["name"] == "triton" and "interpreter" in report["kernels"]["how"]
    assert 0 <= report["max_abs_diff_output"] < 1e-4 and 0 <= report["max_abs_diff_grad"] < 1e-4
    assert "small batch" in report["batch"]
    text = workbench("check", str(trainer.run_dir), "--kernels", "triton")
    assert "scratch kernels      triton: under Triton's interpreter" in text.stdout
    missing = workbench("check", str(tmp_path / "nothing"))
    assert missing.returncode == 2 and "check:" in missing.stderr


def test_a_bidirectional_classifier_trains_and_checks_against_torch(names_dir, tmp_path):
    cfg = default_config("names", data=str(names_dir), hidden_size=16, epochs=25, batch_size=8, device="cpu",
                         dropout=0.0, bidirectional=True, lr=1e-2, precision="fp32")
    trainer = Trainer(cfg, runs_dir=tmp_path, run_id="bi")
    summary = trainer.run()
    assert summary["test_accuracy"] == 1.0  # read both ways, the -ov and Mac...son names part cleanly
    results = classify(trainer.model, trainer.vocab, trainer.labels, ["Dmitrov", "Macdonaldson"], 1)
    assert [r[0][0] for r in results] == ["Ruslandic", "Scotlandic"]
    ck = ckpt_io.load(trainer.run_dir / "last.pt")
    assert "rnn.weight_hh_l1_reverse" in ck.model_state and ck.model_state["head.weight"].shape[1] == 32
    report = json.loads(workbench("check", str(trainer.run_dir), "--json").stdout)
    assert report["reference"] == "torch.nn.GRU" and report["max_abs_diff_grad"] < 1e-4
    # both directions and padded names through the Triton kernels
    report = json.loads(workbench("check", str(trainer.run_dir), "--kernels", "triton", "--json").stdout)
    assert report["kernels"]["name"] == "triton" and report["batch"].startswith("4 test names")
    assert report["max_abs_diff_output"] < 1e-4 and report["max_abs_diff_grad"] < 1e-4


def test_a_language_model_cannot_be_bidirectional():
    errors = RunConfig(task="charlm", data="x", bidirectional=True).validate()
    assert "reads one way" in errors["bidirectional"]


def test_check_through_the_protocol(headless):
    _, run_dir = headless("checked")
    with RunClient.connect(run_dir) as client:
        reply, event = client.call("check", answer=True)
    assert reply["ok"] and event["event"] == "Checked"
    assert event["report"]["reference"] == "torch.nn.GRU" and event["report"]["max_abs_diff_output"] < 1e-4
    assert '"Checked"' in (run_dir / "events.jsonl").read_text()
