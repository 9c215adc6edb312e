"""minGRU and minLSTM: the window in one call equals the window a step at a time, on every path.

Each path (the per-step PyTorch equations, the fused C++ scan, the Triton scan under the
interpreter) is held to the same contract: outputs, h_n and every gradient (input, h_0,
parameters), float64 within 1e-10 and float32 within 1e-5 absolute plus 1e-5 relative, with and
without padded lengths. Then the model around them, training, the Inside view and the checks of
what they do not support.
"""

from __future__ import annotations

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence

from rnn_engine.config import ConfigError, default_config
from rnn_engine.model.networks import ResidualLM
from rnn_engine.nn import gpu_path
from rnn_engine.nn.minimal import MinRecurrent, log_scan, step_scan
from rnn_engine.nn.recurrent import Recurrent

MODES = ["mingru", "minlstm"]
F64 = {"atol": 1e-10, "rtol": 0.0}
F32 = {"atol": 1e-5, "rtol": 1e-5}


def layer(mode: str, dtype=torch.float32, layers: int = 2, **kw) -> MinRecurrent:
    torch.manual_seed(1)
    return MinRecurrent(mode, 5, 6, layers, **kw).to(dtype)


def run(rnn: MinRecurrent, x: torch.Tensor, h0: torch.Tensor, lengths=None, steps: bool = False):
    """Outputs, h_n and every gradient, read in one call or one step at a time with the carried state."""
    x = x.detach().clone().requires_grad_(True)
    h0 = h0.detach().clone().requires_grad_(True)
    rnn.zero_grad()
    if steps:
        h, outs = h0, []
        for t in range(x.shape[0]):
            out, h = rnn(x[t:t + 1], h)
            outs.append(out)
        out, h_n = torch.cat(outs), h
    else:
        out, h_n = rnn(x, h0, lengths)
    weights = torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)
    ((out * weights).sum() + (h_n * h_n).sum()).backward()
    return [out, h_n, x.grad, h0.grad] + [p.grad for p in rnn.parameters()]


def same(a: list[torch.Tensor], b: list[torch.Tensor], tol: dict) -> None:
    for i, (u, v) in enumerate(zip(a, b)):
        torch.testing.assert_close(u, v, **tol, msg=lambda m, i=i: f"tensor {i}: {m}")


def inputs(dtype=torch.float32, steps: int = 9, batch: int = 3):
    torch.manual_seed(2)
    # h_0 any sign: the scans do not need the positive state the log-space one does
    return torch.randn(steps, batch, 5, dtype=dtype), torch.randn(2, batch, 6, dtype=dtype)


@pytest.mark.parametrize("mode", MODES)
def test_float64_window_equals_steps_with_the_carried_state(mode):
    rnn = layer(mode, torch.float64)
    x, h0 = inputs(torch.float64)
    same(run(rnn, x, h0), run(rnn, x, h0, steps=True), F64)


@pytest.mark.parametrize("mode", MODES)
def test_fused_scan_window_equals_steps_and_the_equations(mode, kernels):
    fused, reference = layer(mode), layer(mode)
    reference.use_fused = False
    x, h0 = inputs()
    window = run(fused, x, h0)
    same(window, run(fused, x, h0, steps=True), F32)
    same(window, run(reference, x, h0), F32)


@pytest.mark.parametrize("mode", MODES)
def test_padded_lengths_hold_the_state_and_zero_the_outputs(mode, kernels):
    fused, reference = layer(mode), layer(mode)
    reference.use_fused = False
    x, h0 = inputs()
    lengths = torch.tensor([9, 4, 1])
    a, b = run(fused, x, h0, lengths), run(reference, x, h0, lengths)
    same(a, b, F32)
    out, h_n = a[0], a[1]
    assert out[4:, 1].abs().max() == 0 and out[1:, 2].abs().max() == 0
    # h_n of a short sequence is its state after its last real step
    alone = fused(x[:4, 1:2], h0[:, 1:2])[1]
    torch.testing.assert_close(h_n[:, 1:2], alone, **F32)


@pytest.mark.parametrize("mode", MODES)
def test_a_packed_sequence_reads_as_padding_with_lengths(mode, kernels):
    rnn = layer(mode, batch_first=True)
    x, _ = inputs()
    lengths = torch.tensor([9, 4, 1])
    packed = pack_padded_sequence(x, lengths, enforce_sorted=False)
    out, h_n = rnn(packed)
    padded, h_ref = rnn(x.transpose(0, 1), lengths=lengths)  # batch_first applies to the plain tensor
    torch.testing.assert_close(h_n, h_ref)
    torch.testing.assert_close(torch.nn.utils.rnn.pad_packed_sequence(out)[0], padded.transpose(0, 1))


@pytest.mark.skipif(gpu_path.triton_missing() is not None, reason="Triton is not installed here")
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("padded", [False, True], ids=["full", "padded"])
def test_triton_scan_under_the_interpreter_matches_the_equations(mode, padded):
    triton, reference = layer(mode), layer(mode)
    triton.kernels, reference.use_fused = "triton", False
    x, h0 = inputs()
    lengths = torch.tensor([9, 4, 1]) if padded else None
    same(run(triton, x, h0, lengths), run(reference, x, h0, lengths), F32)


@pytest.mark.parametrize("mode", MODES)
def test_the_log_space_scan_computes_the_same_states_from_zero(mode):
    torch.manual_seed(4)
    proj = torch.randn(50, 2, {"mingru": 2, "minlstm": 3}[mode] * 4, dtype=torch.float64)
    h0 = torch.zeros(2, 4, dtype=torch.float64)
    torch.testing.assert_close(log_scan(mode, proj), step_scan(mode, proj, h0), atol=1e-10, rtol=1e-9)


def test_recurrent_of_a_minimal_mode_is_the_minimal_layer():
    rnn = Recurrent("minGRU", 5, 6, num_layers=2, batch_first=True)
    assert isinstance(rnn, MinRecurrent) and rnn.mode == "mingru" and rnn.batch_first
    names = [n for n, _ in rnn.named_parameters()]
    assert names == ["weight_ih_l0", "bias_ih_l0", "weight_ih_l1", "bias_ih_l1"]
    out, h_n = rnn(torch.randn(3, 7, 5))
    assert out.shape == (3, 7, 6) and h_n.shape == (2, 3, 6)
    # unbatched input and token ids (columns of weight_ih_l0, as the classic layers read them)
    out, h_n = Recurrent("minlstm", 10, 6)(torch.tensor([1, 4, 2]))
    assert out.shape == (3, 6) and h_n.shape == (1, 6)


def test_bad_input_says_what_was_expected():
    rnn = MinRecurrent("mingru", 5, 6, 2)
    with pytest.raises(RuntimeError, match="Expected 5, got 4"):
        rnn(torch.randn(3, 2, 4))
    with pytest.raises(RuntimeError, match=r"Expected hidden size \(2, 2, 6\), got \[1, 2, 6\]"):
        rnn(torch.randn(3, 2, 5), torch.zeros(1, 2, 6))
    with pytest.raises(ValueError, match="mode must be one of mingru, minlstm"):
        MinRecurrent("gru", 5, 6)
    with pytest.raises(ValueError, match="hidden_size must be a whole number > 0"):
        MinRecurrent("minlstm", 5, 0)


@pytest.mark.parametrize("mode", MODES)
def test_the_language_model_reads_a_window_as_it_reads_its_characters(mode):
    torch.manual_seed(5)
    model = ResidualLM(20, mode, 8, 2).double().eval()
    tokens = torch.randint(0, 20, (12, 2))
    logits, state = model(tokens)
    outs, s = [], None
    for t in range(12):
        out, s = model(tokens[t:t + 1], s)
        outs.append(out)
    torch.testing.assert_close(torch.cat(outs), logits, **F64)
    torch.testing.assert_close(s, state, **F64)
    assert state.shape == (2, 2, 8)


def test_min_cells_refuse_what_they_do_not_have():
    errors = default_config("names", data="x", cell="minlstm", bidirectional=True, impl="torch").validate()
    assert "torch.nn has no minlstm" in errors["impl"] and "read one way" in errors["bidirectional"]
    with pytest.raises(ConfigError):
        default_config("charlm", data="x", cell="mingru", impl="torch").checked()


def test_bf16_gemms_stay_near_float32_and_keep_the_states_float32():
    from rnn_engine.model.networks import set_gemm_dtype

    torch.manual_seed(6)
    model = ResidualLM(20, "mingru", 32, 2).eval()
    tokens = torch.randint(0, 20, (16, 3))
    exact, _ = model(tokens)
    assert set_gemm_dtype(model, torch.bfloat16)
    assert all(block.rnn.gemm_dtype == torch.bfloat16 for block in model.blocks)
    low, state = model(tokens)
    assert low.dtype == state.dtype == torch.float32
    assert (low - exact).abs().max() < 0.1 * exact.abs().max()


@pytest.mark.parametrize("mode", MODES)
def test_with_bf16_gemms_the_kernels_read_the_gemm_s_own_bf16_output(mode, kernels):
    import torch.nn.functional as F

    rnn = layer(mode, layers=1)
    rnn.gemm_dtype = torch.bfloat16
    x, h0 = inputs()
    out, h_n = rnn(x, h0[:1])
    w, b = rnn.layer_parameters(0)
    # the reference: the same bf16 product, widened, the bias added in float32, the equations per step
    proj = F.linear(x.to(torch.bfloat16), w.to(torch.bfloat16)).float() + b
    expected = step_scan(mode, proj, h0[0])
    torch.testing.assert_close(out, expected, **F32)
    torch.testing.assert_close(h_n[0], expected[-1], **F32)
    out.sum().backward()
    # the bias's gradient is the sum of the projection's, which the kernels return in bf16
    reference = layer(mode, layers=1)
    reference.use_fused = False
    reference(x, h0[:1])[0].sum().backward()
    torch.testing.assert_close(rnn.bias_ih_l0.grad, reference.bias_ih_l0.grad, atol=0.05, rtol=0.05)
