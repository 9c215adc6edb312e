"""bf16 mixed precision: what auto picks, bf16 GEMMs with everything else fp32, training that tracks fp32."""

from __future__ import annotations

import pytest
import torch

from rnn_engine import Trainer
from rnn_engine.config import RunConfig
from rnn_engine.events import RunStarted
from rnn_engine.model import checkpoint as ckpt_io
from rnn_engine.model.networks import set_gemm_dtype
from rnn_engine.nn import fused, precision
from rnn_engine.nn.recurrent import Recurrent

CPU = torch.device("cpu")


def test_auto_is_fp32_when_bf16_detection_is_forced_off(monkeypatch):
    monkeypatch.setenv("RNN_WORKBENCH_BF16", "0")
    chosen, why = precision.resolve(RunConfig(precision="auto"), CPU)
    assert chosen == "fp32" and "turned off" in why
    assert precision.resolve(RunConfig(precision="bf16"), CPU)[0] == "bf16"  # honoured, with a note
    assert precision.resolve(RunConfig(precision="bf16", dtype="float64"), CPU)[0] == "fp32"


@pytest.mark.parametrize("onednn", [True, False])
def test_bf16_detection_forced_on_decides_as_a_bf16_cpu_does(monkeypatch, onednn):
    # what a CPU with AVX512_BF16 decides, on any CPU: auto takes bf16 for the fused kernels
    monkeypatch.setenv("RNN_WORKBENCH_BF16", "1")
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx2"})
    assert precision.fast_bf16(CPU) == (True, "bf16 forced on (RNN_WORKBENCH_BF16=1), whatever this CPU has")
    monkeypatch.setattr(fused, "dnnl_bf16", lambda: (True, "") if onednn else (False, "oneDNN has no bf16"))
    chosen, why = precision.resolve(RunConfig(precision="auto"), CPU)
    assert chosen == "bf16" and ("oneDNN bf16 GEMMs" if onednn else "ATen bf16 GEMMs") in why
    assert precision.resolve(RunConfig(precision="auto", impl="torch"), CPU)[0] == "fp32"
    assert precision.resolve(RunConfig(precision="auto", arch="index-rnn"), CPU)[0] == "fp32"
    assert precision.resolve(RunConfig(precision="fp32"), CPU)[0] == "fp32"


def test_auto_picks_bf16_on_a_bf16_cpu_whose_fused_kernels_run_it(monkeypatch):
    monkeypatch.delenv("RNN_WORKBENCH_BF16", raising=False)
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx2", "avx512_bf16"})
    assert precision.fast_bf16(CPU) == (True, "this CPU has AVX512_BF16")
    monkeypatch.setattr(fused, "dnnl_bf16", lambda: (True, ""))
    chosen, why = precision.resolve(RunConfig(precision="auto"), CPU)
    assert chosen == "bf16" and "AVX512_BF16" in why and "oneDNN bf16" in why
    # not for torch.nn layers, tutorial models or float64, and not where oneDNN failed its check
    assert precision.resolve(RunConfig(precision="auto", impl="torch"), CPU)[0] == "fp32"
    assert precision.resolve(RunConfig(precision="auto", arch="index-rnn"), CPU)[0] == "fp32"
    assert precision.resolve(RunConfig(precision="auto", dtype="float64"), CPU)[0] == "fp32"
    monkeypatch.setattr(fused, "dnnl_bf16", lambda: (False, "oneDNN's bf16 GEMMs failed here (x)"))
    chosen, why = precision.resolve(RunConfig(precision="auto"), CPU)
    assert chosen == "fp32" and "failed here" in why
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx2"})
    assert not precision.fast_bf16(CPU)[0]


def test_auto_stays_fp32_on_cuda_until_measured_there(monkeypatch):
    monkeypatch.setattr(precision, "fast_bf16", lambda device: (True, "compute capability 9.0"))
    chosen, why = precision.resolve(RunConfig(precision="auto"), torch.device("cuda"))
    assert chosen == "fp32" and "not yet measured on cuda" in why and "--precision bf16" in why
    assert precision.resolve(RunConfig(precision="bf16"), torch.device("cuda"))[0] == "bf16"


def test_onednn_bf16_check_on_this_cpu(kernels):
    # the real check, whichever CPU this is: it passes where oneDNN has bf16 and says why not elsewhere
    if torch.ops.mkldnn._is_mkldnn_bf16_supported():
        assert fused._bf16_check() == "" and fused.dnnl_bf16() == (True, "")
    else:
        assert fused.dnnl_bf16() == (False, "oneDNN has no bf16 on this CPU")


def test_onednn_bf16_check_fails_where_onednn_claims_bf16_and_cannot_run_it(kernels, monkeypatch):
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True)

    def broken(weight, batch):
        raise RuntimeError("could not create a primitive descriptor")

    assert fused._bf16_check(broken) == ("oneDNN's bf16 GEMMs failed here (could not create a primitive "
                                         "descriptor)")


def test_onednn_bf16_check_fails_when_the_routes_disagree():
    torch.manual_seed(0)
    plain = (torch.randn(9, 4, 16), torch.randn(48, 16), torch.randn(4, 16))
    close = tuple(t * (1 + 1e-3) for t in plain)  # bf16 rounding: within the check's tolerance
    assert fused._disagreement(close, plain) == ""
    wrong = (plain[0], plain[1] * 1.5, plain[2])
    assert fused._disagreement(wrong, plain).startswith("oneDNN's bf16 dW_hh disagreed with at::mm's by ")


def test_onednn_bf16_check_passes_when_both_routes_agree(kernels, monkeypatch):
    # forced on any CPU: oneDNN's route replaced by at::mm, so the two runs agree and the check passes
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True)
    assert fused._bf16_check(lambda weight, batch: None) == ""


def _bf16_pair(mode: str) -> tuple[Recurrent, torch.nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    ours = Recurrent(mode, 6, 32, num_layers=2)
    ref = {"rnn": torch.nn.RNN, "gru": torch.nn.GRU, "lstm": torch.nn.LSTM}[mode](6, 32, num_layers=2)
    ref.load_state_dict(ours.state_dict())
    return ours, ref, torch.randn(12, 4, 6)


@pytest.mark.parametrize("mode", ["rnn", "gru", "lstm"])
def test_bf16_gemms_round_in_bf16_and_keep_fp32_state(mode):
    ours, _, x = _bf16_pair(mode)
    ours.gemm_dtype = torch.bfloat16
    out, h_n = ours(x)
    states = h_n if isinstance(h_n, tuple) else (h_n,)
    assert out.dtype == torch.float32 and all(s.dtype == torch.float32 for s in states)
    ours.gemm_dtype = None
    fp32, _ = ours(x)
    # bf16 keeps 8 bits of mantissa: agreement to a few parts in a hundred, not 1e-6
    assert 1e-4 < (out - fp32).abs().max() < 3e-2  # the GEMMs really ran in bf16


AUTOCAST_LSTM = pytest.mark.skipif(
    not torch.ops.mkldnn._is_mkldnn_bf16_supported(),
    reason="torch.nn.LSTM under CPU autocast needs oneDNN's bf16 LSTM, which this CPU's oneDNN lacks")


@pytest.mark.parametrize("mode", ["rnn", "gru", pytest.param("lstm", marks=AUTOCAST_LSTM)])
def test_bf16_gemms_match_torch_under_autocast(mode):
    ours, ref, x = _bf16_pair(mode)
    ours.gemm_dtype = torch.bfloat16
    out, _ = ours(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ref_out, _ = ref(x)
    torch.testing.assert_close(out, ref_out.float(), atol=3e-2, rtol=0)


def _run(model: Recurrent, x: torch.Tensor, fused_path: bool) -> tuple[torch.Tensor, list[torch.Tensor]]:
    model.use_fused = fused_path
    out, h_n = model(x)
    states = h_n if isinstance(h_n, tuple) else (h_n,)
    loss = (out * out.detach().sin()).sum() + sum((s * s).sum() for s in states)
    inputs = [*model.parameters()] + ([x] if x.is_floating_point() else [])
    return out, list(torch.autograd.grad(loss, inputs))


@pytest.mark.parametrize("mode", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("tokens", [False, True])
def test_fused_bf16_kernels_equal_the_per_step_bf16_path(mode, tokens, kernels):
    torch.manual_seed(3)
    model = Recurrent(mode, 6, 48, num_layers=2)
    model.gemm_dtype = torch.bfloat16
    steps, batch = 20, 5
    # token ids: the first layer reads rows of its input table, and only W_hh's GEMMs run in bf16
    x = torch.randint(0, 6, (steps, batch)) if tokens else torch.randn(steps, batch, 6, requires_grad=True)
    out_f, g_f = _run(model, x, fused_path=True)
    out_s, g_s = _run(model, x, fused_path=False)
    assert fused.applies(x, model.weight_hh_l0)
    # the same bf16 GEMMs; the kernels' tanh and sigmoid differ from torch's by ~1e-7, which can move
    # an h_t across a bf16 rounding boundary: agreement to bf16's tolerance, not float32's
    torch.testing.assert_close(out_f, out_s, rtol=1.6e-2, atol=2e-3)
    for a, b in zip(g_f, g_s):
        # each step's dW rounds to bf16 on the per-step path, dW over all steps once in the kernels
        assert (a - b).norm() <= 1e-2 * b.norm() + 1e-6
    model.gemm_dtype = None
    out_32, g_32 = _run(model, x, fused_path=True)
    assert 1e-4 < (out_f - out_32).abs().max() < 3e-2  # bf16 really ran, and stayed close to fp32
    for a, b in zip(g_f, g_32):
        assert (a - b).norm() <= 3e-2 * b.norm() + 1e-6


def tiny(corpus, cell, prec):
    return RunConfig(task="charlm", data=str(corpus), cell=cell, hidden_size=32, num_layers=1, seq_len=16,
                     batch_size=8, lr=1e-2, time_budget=0.0, epochs=100, max_steps=40, sample_length=0,
                     seed=11, device="cpu", dropout=0.0, precision=prec)


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("path", ["fused", "per-step"])
def test_bf16_training_tracks_fp32(cell, path, tiny_corpus, tmp_path, request):
    if path == "fused":
        request.getfixturevalue("kernels")
    events = []
    bf16 = Trainer(tiny(tiny_corpus, cell, "bf16"), runs_dir=tmp_path, run_id="bf16", sink=events.append)
    bf16.model.rnn.use_fused = path == "fused"  # per-step: the path CUDA and the fallback take
    summary = bf16.run()
    fp32 = Trainer(tiny(tiny_corpus, cell, "fp32"), runs_dir=tmp_path, run_id="fp32").run()
    assert summary["precision"] == "bf16" and fp32["precision"] == "fp32"
    assert abs(summary["train_loss"] - fp32["train_loss"]) <= 0.02 * fp32["train_loss"]
    assert abs(summary["val_loss"] - fp32["val_loss"]) <= 0.02 * fp32["val_loss"]
    started = next(e for e in events if isinstance(e, RunStarted))
    assert "precision bf16" in started.recurrent_path
    assert "fused C++ kernels" in started.recurrent_path and "bf16 GEMMs" in started.recurrent_path
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
