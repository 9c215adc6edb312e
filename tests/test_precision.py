"""bf16 mixed precision: what auto picks, bf16 GEMMs with everything else fp32, training that tracks fp32."""

from __future__ import annotations

import pytest
import torch

from rnn_engine import Trainer, precision
from rnn_engine import checkpoint as ckpt_io
from rnn_engine.config import RunConfig
from rnn_engine.events import RunStarted
from rnn_engine.models import set_gemm_dtype
from rnn_engine.recurrent import Recurrent

CPU = torch.device("cpu")


def test_auto_is_fp32_without_fast_bf16(monkeypatch):
    monkeypatch.setenv("RNN_WORKBENCH_BF16", "0")
    chosen, why = precision.resolve(RunConfig(precision="auto"), CPU)
    assert chosen == "fp32" and "turned off" in why
    assert precision.resolve(RunConfig(precision="bf16"), CPU)[0] == "bf16"  # honoured, with a note
    assert precision.resolve(RunConfig(precision="bf16", dtype="float64"), CPU)[0] == "fp32"


def test_auto_names_fast_bf16_but_waits_for_a_measurement(monkeypatch):
    monkeypatch.delenv("RNN_WORKBENCH_BF16", raising=False)
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx2", "avx512_bf16"})
    assert precision.fast_bf16(CPU) == (True, "this CPU has AVX512_BF16")
    chosen, why = precision.resolve(RunConfig(precision="auto"), CPU)
    assert chosen == "fp32" and "AVX512_BF16" in why and "--precision bf16" in why
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx2"})
    assert not precision.fast_bf16(CPU)[0]


@pytest.mark.parametrize("mode", ["rnn", "gru", "lstm"])
def test_bf16_gemms_match_torch_under_autocast_and_keep_fp32_state(mode):
    torch.manual_seed(0)
    ours = Recurrent(mode, 6, 32, num_layers=2)
    ref = {"rnn": torch.nn.RNN, "gru": torch.nn.GRU, "lstm": torch.nn.LSTM}[mode](6, 32, num_layers=2)
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(12, 4, 6)
    ours.gemm_dtype = torch.bfloat16
    out, h_n = ours(x)
    states = h_n if isinstance(h_n, tuple) else (h_n,)
    assert out.dtype == torch.float32 and all(s.dtype == torch.float32 for s in states)
    ours.gemm_dtype = None
    fp32, _ = ours(x)
    # bf16 keeps 8 bits of mantissa: agreement to a few parts in a hundred, not 1e-6
    assert 1e-4 < (out - fp32).abs().max() < 3e-2  # the GEMMs really ran in bf16
    if mode == "lstm" and not precision.fast_bf16(CPU)[0]:
        return  # oneDNN has no bf16 LSTM primitive on a CPU without bf16: torch's autocast LSTM fails
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ref_out, _ = ref(x)
    torch.testing.assert_close(out, ref_out.float(), atol=3e-2, rtol=0)


def tiny(corpus, cell, prec):
    return RunConfig(task="charlm", data=str(corpus), cell=cell, hidden_size=32, num_layers=1, seq_len=16,
                     batch_size=8, lr=1e-2, time_budget=0.0, epochs=100, max_steps=40, sample_length=0,
                     seed=11, device="cpu", dropout=0.0, precision=prec)


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_bf16_training_tracks_fp32(cell, tiny_corpus, tmp_path):
    events = []
    bf16 = Trainer(tiny(tiny_corpus, cell, "bf16"), runs_dir=tmp_path, run_id="bf16", sink=events.append)
    summary = bf16.run()
    fp32 = Trainer(tiny(tiny_corpus, cell, "fp32"), runs_dir=tmp_path, run_id="fp32").run()
    assert summary["precision"] == "bf16" and fp32["precision"] == "fp32"
    assert abs(summary["train_loss"] - fp32["train_loss"]) <= 0.02 * fp32["train_loss"]
    assert abs(summary["val_loss"] - fp32["val_loss"]) <= 0.02 * fp32["val_loss"]
    started = next(e for e in events if isinstance(e, RunStarted))
    assert "precision bf16" in started.recurrent_path
    # master weights, optimizer state and checkpoints stay fp32
    assert all(p.dtype == torch.float32 for p in bf16.model.parameters())
    assert all(t.dtype == torch.float32 for s in bf16.optimizer.state.values() for t in s.values()
               if torch.is_tensor(t) and t.is_floating_point())
    saved = ckpt_io.load(bf16.run_dir / "last.pt")
    assert all(v.dtype == torch.float32 for v in saved.model_state.values())


def test_impl_torch_runs_under_autocast_with_an_fp32_carried_state(tiny_corpus, tmp_path):
    trainer = Trainer(tiny(tiny_corpus, "gru", "bf16").updated(impl="torch", max_steps=5), runs_dir=tmp_path)
    assert trainer.run()["precision"] == "bf16"
    assert trainer._state is not None and trainer._state.dtype == torch.float32


def test_tutorial_models_stay_fp32(tiny_corpus, tmp_path):
    config = tiny(tiny_corpus, "rnn", "bf16").updated(arch="index-rnn", max_steps=2)
    trainer = Trainer(config, runs_dir=tmp_path)
    assert trainer.precision == "fp32" and "tutorial" in trainer.precision_why
    assert not set_gemm_dtype(trainer.model, torch.bfloat16)
