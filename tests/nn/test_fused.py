"""The fused C++ kernels: they build here, and compute what the per-step PyTorch path and torch.nn do."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
import torch

from rnn_engine.model.networks import CharLM
from rnn_engine.nn import fused
from rnn_engine.nn.recurrent import Recurrent

CASES = [("rnn", "tanh"), ("rnn", "relu"), ("gru", "tanh"), ("lstm", "tanh")]
TORCH = {"rnn": torch.nn.RNN, "gru": torch.nn.GRU, "lstm": torch.nn.LSTM}


def _states(h_n) -> tuple[torch.Tensor, ...]:
    return h_n if isinstance(h_n, tuple) else (h_n,)


def _loss(out: torch.Tensor, h_n) -> torch.Tensor:
    # weights that differ per element, so a gradient routed to the wrong place cannot cancel out
    w = torch.arange(out.numel(), dtype=out.dtype).view_as(out).mul(0.37).sin()
    loss = (out * w).sum()
    for s in _states(h_n):
        loss = loss + (s * s).sum()
    return loss


def _grads(model: torch.nn.Module, x: torch.Tensor, hx, lengths):
    out, h_n = model(x, hx, lengths)
    inputs = list(model.parameters()) + ([x] if x.is_floating_point() else [])
    return out, h_n, torch.autograd.grad(_loss(out, h_n), inputs)


# these look at the fallback or at the build itself; every other test compares the kernels with
# another path and is skipped, with the reason, where they cannot be built
WITHOUT_KERNELS = {"test_kernels_build_and_load", "test_turned_off_falls_back_to_pytorch_ops",
                   "test_missing_compiler_falls_back_and_says_so"}


@pytest.fixture(autouse=True)
def _fused_path(request):
    if request.node.originalname not in WITHOUT_KERNELS:
        request.getfixturevalue("kernels")


def test_kernels_build_and_load():
    compiler = os.environ.get("CXX", "g++")
    if shutil.which(compiler) is None:
        pytest.skip(f"no C++ compiler ({compiler}) here: the kernels cannot be built")
    # a machine with a compiler builds them, and the fast path is the one in use
    assert fused.load(), fused.status()
    assert fused.status().startswith("fused C++ kernels")


@pytest.mark.parametrize("mode,act", CASES)
@pytest.mark.parametrize("steps", [1, 3, 12])  # below and above the step count where weights get packed
@pytest.mark.parametrize("padded", [False, True])
@pytest.mark.parametrize("tokens", [False, True])
def test_fused_equals_per_step_path(mode, act, steps, padded, tokens):
    torch.manual_seed(CASES.index((mode, act)) * 100 + steps * 4 + padded * 2 + tokens)
    batch, inp, hidden, layers = 5, 7, 16, 2
    model = Recurrent(mode, inp, hidden, num_layers=layers, nonlinearity=act)
    if tokens:
        x = torch.randint(0, inp, (steps, batch))
    else:
        x = torch.randn(steps, batch, inp, requires_grad=True)
    lengths = torch.randint(1, steps + 1, (batch,)) if padded else None
    h0 = torch.randn(layers, batch, hidden)
    hx = (h0, torch.randn(layers, batch, hidden)) if mode == "lstm" else h0
    out_f, h_f, g_f = _grads(model, x, hx, lengths)
    model.use_fused = False
    out_p, h_p, g_p = _grads(model, x, hx, lengths)
    torch.testing.assert_close(out_f, out_p, atol=2e-6, rtol=0)
    for a, b in zip(_states(h_f), _states(h_p)):
        torch.testing.assert_close(a, b, atol=2e-6, rtol=0)
    for a, b in zip(g_f, g_p):
        torch.testing.assert_close(a, b, atol=2e-5, rtol=1e-5)


@pytest.mark.parametrize("mode,act", CASES)
def test_fused_matches_torch_nn_on_packed_sequences(mode, act):
    torch.manual_seed(3)
    kw = {"nonlinearity": act} if mode == "rnn" else {}
    ours = Recurrent(mode, 6, 24, num_layers=2, nonlinearity=act)
    ref = TORCH[mode](6, 24, num_layers=2, **kw)
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(20, 4, 6)
    lengths = torch.tensor([20, 7, 13, 1])
    out, h_n = ours(x, None, lengths)
    packed = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, enforce_sorted=False)
    ref_out, ref_h = ref(packed)
    ref_out, _ = torch.nn.utils.rnn.pad_packed_sequence(ref_out, total_length=20)
    torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=0)
    for a, b in zip(_states(h_n), _states(ref_h)):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_gate_functions_are_accurate_and_saturate_cleanly():
    # h = tanh(x) with W_ih = I, W_hh = 0, no bias: the kernels' tanh against torch's over a wide range
    model = Recurrent("rnn", 1, 1, bias=False)
    with torch.no_grad():
        model.weight_ih_l0.fill_(1.0)
        model.weight_hh_l0.zero_()
    x = torch.linspace(-60, 60, 24001).view(-1, 1, 1)
    out, _ = model(x)
    torch.testing.assert_close(out, torch.tanh(x), atol=3e-7, rtol=0)
    assert out.max().item() == pytest.approx(1.0) and out.min().item() == pytest.approx(-1.0)


def test_non_finite_values_propagate():
    # the trainer's NaN guard relies on a NaN or inf reaching the loss, not being squashed by the kernels
    for mode in ("rnn", "gru", "lstm"):
        model = Recurrent(mode, 3, 8)
        x = torch.randn(6, 2, 3)
        x[2, 1, 0] = float("nan")
        out, _ = model(x)
        assert torch.isnan(out[2:, 1]).all(), mode
        assert torch.isfinite(out[:, 0]).all(), mode


def test_bad_token_id_is_an_error_not_a_read_past_the_table():
    model = Recurrent("gru", 5, 8)
    with pytest.raises((RuntimeError, IndexError)):
        model(torch.tensor([[1], [5]]))


def test_charlm_trains_the_same_on_both_paths():
    torch.manual_seed(0)
    a = CharLM(30, "lstm", 32)
    b = CharLM(30, "lstm", 32)
    b.load_state_dict(a.state_dict())
    b.rnn.use_fused = False
    x = torch.randint(0, 30, (25, 6))
    y = torch.randint(0, 30, (25, 6))
    for model in (a, b):
        opt = torch.optim.SGD(model.parameters(), lr=0.5)
        for _ in range(5):
            logits, _ = model(x)
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 30), y.reshape(-1))
            opt.zero_grad()
            loss.backward()
            opt.step()
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        torch.testing.assert_close(p, q, atol=1e-5, rtol=0, msg=name)


def _status_in_subprocess(env: dict[str, str], tmp_path) -> str:
    code = ("import torch; from rnn_engine.nn import fused; from rnn_engine.nn.recurrent import Recurrent; "
            "out, _ = Recurrent('gru', 3, 4)(torch.randn(5, 2, 3)); print(fused.status())")
    env = {**os.environ, "RNN_WORKBENCH_CACHE": str(tmp_path), **env}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_turned_off_falls_back_to_pytorch_ops(tmp_path):
    line = _status_in_subprocess({"RNN_WORKBENCH_KERNELS": "0"}, tmp_path)
    assert line == "PyTorch ops (fused kernels unavailable: turned off by RNN_WORKBENCH_KERNELS=0)"


def test_missing_compiler_falls_back_and_says_so(tmp_path):
    line = _status_in_subprocess({"CXX": "no-such-compiler-xyz"}, tmp_path)
    assert line == "PyTorch ops (fused kernels unavailable: no C++ compiler (no-such-compiler-xyz) on PATH)"


@pytest.mark.parametrize("bias", [True, False])
def test_linear_matches_f_linear_forward_and_backward(bias):
    torch.manual_seed(1)
    x = torch.randn(3, 150, 40, requires_grad=True)  # 450 rows: large enough for the oneDNN path
    w = torch.randn(65, 40, requires_grad=True)
    b = torch.randn(65, requires_grad=True) if bias else None
    y = fused.linear(x, w, b)
    assert "_Linear" in type(y.grad_fn.next_functions[0][0]).__name__  # not the F.linear fallback
    ref = torch.nn.functional.linear(x, w, b)
    torch.testing.assert_close(y, ref, atol=1e-5, rtol=1e-5)
    dy = torch.randn_like(y)
    inputs = [x, w] + ([b] if bias else [])
    for a, r in zip(torch.autograd.grad(y, inputs, dy), torch.autograd.grad(ref, inputs, dy)):
        torch.testing.assert_close(a, r, atol=1e-4, rtol=1e-5)


def test_deep_model_with_large_batches_equals_per_step_path():
    # T*B = 320 rows, so layer 1's input projection and the head run on the oneDNN linear too
    torch.manual_seed(2)
    a = CharLM(40, "gru", 32, num_layers=3)
    x = torch.randint(0, 40, (20, 16))
    logits, _ = a(x)
    grads = torch.autograd.grad(logits.sin().sum(), list(a.parameters()))
    a.rnn.use_fused = False
    ref_logits, _ = a(x)
    ref_grads = torch.autograd.grad(ref_logits.sin().sum(), list(a.parameters()))
    torch.testing.assert_close(logits, ref_logits, atol=1e-5, rtol=0)
    for g, r in zip(grads, ref_grads):
        torch.testing.assert_close(g, r, atol=1e-4, rtol=1e-5)


@pytest.mark.parametrize("mode,act", CASES)
@pytest.mark.parametrize("padded", [False, True])
def test_table_gradient_summed_across_threads(mode, act, padded):
    # wide enough tiles that each step's rows are split between two threads, and a 3-token vocabulary so
    # rows on both threads add into the same table row: the per-thread copies must not race or be lost
    torch.manual_seed(7 + padded)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        batch, vocab, hidden, steps = 64, 3, 128, 6
        model = Recurrent(mode, vocab, hidden, nonlinearity=act)
        x = torch.randint(0, vocab, (steps, batch))
        lengths = torch.randint(1, steps + 1, (batch,)) if padded else None
        out_f, h_f, g_f = _grads(model, x, None, lengths)
        model.use_fused = False
        out_p, h_p, g_p = _grads(model, x, None, lengths)
    finally:
        torch.set_num_threads(threads)
    torch.testing.assert_close(out_f, out_p, atol=2e-6, rtol=0)
    for a, b in zip(g_f, g_p):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-5)


@pytest.mark.parametrize("mode,act", CASES)
@pytest.mark.parametrize("padded", [False, True])
def test_bidirectional_runs_fused_and_matches_torch_nn(mode, act, padded, monkeypatch):
    torch.manual_seed(5)
    kw = {"nonlinearity": act} if mode == "rnn" else {}
    ours = Recurrent(mode, 6, 24, num_layers=2, nonlinearity=act, bidirectional=True)
    ref = TORCH[mode](6, 24, num_layers=2, bidirectional=True, **kw)
    ref.load_state_dict(ours.state_dict())
    calls = []
    run_layer = fused.run_layer
    monkeypatch.setattr(fused, "run_layer", lambda *a, **k: calls.append(1) or run_layer(*a, **k))
    x = torch.randn(20, 4, 6)
    lengths = torch.tensor([20, 7, 13, 1]) if padded else None
    out, h_n = ours(x, None, lengths)
    assert len(calls) == 4  # two layers, two directions, all on the kernels
    if padded:
        packed = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, enforce_sorted=False)
        ref_out, ref_h = ref(packed)
        ref_out, _ = torch.nn.utils.rnn.pad_packed_sequence(ref_out, total_length=20)
    else:
        ref_out, ref_h = ref(x)
    torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=0)
    for a, b in zip(_states(h_n), _states(ref_h)):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    out.sum().backward()
    ref_out.sum().backward()
    ref_params = dict(ref.named_parameters())
    for name, p in ours.named_parameters():
        torch.testing.assert_close(p.grad, ref_params[name].grad, atol=1e-4, rtol=1e-4, msg=name)
