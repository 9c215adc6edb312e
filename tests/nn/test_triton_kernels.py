"""The GPU path's Triton kernels, run on the CPU under Triton's interpreter (conftest sets it).

Each cell, one and two layers, one and two directions, with and without padded lengths: outputs
and every gradient against the per-step path, fp32 within 1e-5. Then the op itself through
torch.library.opcheck, bf16 GEMM operands, the self-check and its fallback.
"""

from __future__ import annotations

import json

import pytest
import torch

from rnn_engine.nn import gpu_path
from rnn_engine.nn.recurrent import Recurrent

from ..conftest import workbench

if gpu_path.triton_missing() is not None:  # Linux installs it with the dev extra; elsewhere say why
    pytest.skip(f"the Triton kernels cannot run here: {gpu_path.triton_missing()}", allow_module_level=True)

from rnn_engine.nn import layer_op, paths, triton_layer  # noqa: E402 - needs Triton, checked above

CELLS = [("rnn", "tanh"), ("rnn", "relu"), ("gru", "tanh"), ("lstm", "tanh")]


def pair(mode: str, nonlinearity: str = "tanh", **kw) -> tuple[Recurrent, Recurrent]:
    """A per-step layer and one on the Triton kernels with the same weights."""
    torch.manual_seed(3)
    reference = Recurrent(mode, 5, 6, nonlinearity=nonlinearity, **kw)
    reference.use_fused = False
    kernels = Recurrent(mode, 5, 6, nonlinearity=nonlinearity, **kw)
    kernels.load_state_dict(reference.state_dict())
    kernels.kernels = "triton"
    return reference, kernels


def outputs_and_grads(rnn: Recurrent, x: torch.Tensor, lengths: torch.Tensor | None, seed: int = 0
                      ) -> list[torch.Tensor]:
    torch.manual_seed(seed)  # the same dropout masks on both sides
    out, h_n = rnn(x, lengths=lengths)
    states = list(h_n) if isinstance(h_n, tuple) else [h_n]
    weights = torch.linspace(-1, 1, out.shape[-1])
    loss = (out * weights).square().sum() + sum(s.sum() * (i + 1) for i, s in enumerate(states))
    loss.backward()
    return [out.detach(), *(s.detach() for s in states), *(p.grad for p in rnn.parameters())]


def assert_close(a: list[torch.Tensor], b: list[torch.Tensor], tol: float) -> None:
    assert len(a) == len(b)
    for i, (x, y) in enumerate(zip(a, b)):
        assert x.shape == y.shape
        assert (x - y).abs().max().item() <= tol, f"tensor {i}: {(x - y).abs().max().item():.2e}"


@pytest.mark.parametrize("padded", [False, True], ids=["full", "padded"])
@pytest.mark.parametrize("layers,bidirectional", [(1, False), (1, True), (2, False), (2, True)],
                         ids=["1", "1-bi", "2", "2-bi"])
@pytest.mark.parametrize("mode,nonlinearity", CELLS, ids=["rnn-tanh", "rnn-relu", "gru", "lstm"])
def test_the_kernels_compute_what_the_per_step_path_does(mode, nonlinearity, layers, bidirectional, padded):
    reference, kernels = pair(mode, nonlinearity, num_layers=layers, bidirectional=bidirectional)
    x = torch.randn(5, 3, 5, generator=torch.Generator().manual_seed(1))
    lengths = torch.tensor([5, 2, 1]) if padded else None
    assert_close(outputs_and_grads(kernels, x, lengths), outputs_and_grads(reference, x, lengths), 1e-5)


def test_dropout_between_layers_token_input_and_a_given_state_match_too():
    reference, kernels = pair("gru", num_layers=2, dropout=0.4)
    reference.train(), kernels.train()
    x = torch.randn(4, 2, 5)
    got, want = outputs_and_grads(kernels, x, None, seed=7), outputs_and_grads(reference, x, None, seed=7)
    assert_close(got, want, 1e-5)
    reference, kernels = pair("lstm", num_layers=2)
    ids = torch.tensor([[0, 4], [3, 3], [1, 0]])  # token ids: layer 0 reads a column of W_ih
    assert_close(outputs_and_grads(kernels, ids, None), outputs_and_grads(reference, ids, None), 1e-5)
    h0 = (torch.randn(2, 2, 6), torch.randn(2, 2, 6))
    a, _ = kernels(ids, h0)
    b, _ = reference(ids, h0)
    assert (a - b).abs().max() <= 1e-5


@pytest.mark.parametrize("mode", ["rnn", "gru", "lstm"])
def test_bf16_gemm_operands_on_the_kernels_agree_with_the_per_step_bf16_path(mode):
    reference, kernels = pair(mode, num_layers=2)
    reference.gemm_dtype = kernels.gemm_dtype = torch.bfloat16
    x = torch.randn(6, 3, 5)
    got, want = outputs_and_grads(kernels, x, None), outputs_and_grads(reference, x, None)
    assert all(t.dtype == torch.float32 for t in got)  # states and gradients stay fp32
    assert_close(got, want, 2e-2)  # both round the same operands to bf16; their sums differ in order


def layer_args(mode: str, lengths: bool = True) -> tuple:
    gen = torch.Generator().manual_seed(5)
    steps, batch, hidden = 4, 2, 3
    g = {"rnn": 1, "gru": 3, "lstm": 4}[mode] * hidden
    leaf = lambda *shape: torch.randn(*shape, generator=gen).requires_grad_()  # noqa: E731
    return (mode, leaf(steps, batch, g), leaf(g, hidden), leaf(hidden) if mode == "gru" else None,
            leaf(batch, hidden), leaf(batch, hidden) if mode == "lstm" else None,
            torch.tensor([4, 2]) if lengths else None, False, False)


@pytest.mark.parametrize("mode", ["rnn", "gru", "lstm"])
def test_the_layer_op_passes_opcheck(mode):
    # schema, fake (meta) implementation, autograd registration and torch.compile's dispatch
    torch.library.opcheck(layer_op.layer, layer_args(mode))
    torch.library.opcheck(layer_op.layer, layer_args(mode, lengths=False))


@pytest.mark.parametrize("mode", ["rnn", "gru", "lstm"])
def test_the_fused_cpu_path_and_the_triton_path_agree(mode, kernels):
    # the two fast paths of one layer, each chosen by paths.py, on the same weights and padded input
    results = []
    for name in ("fused", "triton"):
        torch.manual_seed(3)
        layer = Recurrent(mode, 5, 6, num_layers=2, bidirectional=True)
        layer.kernels = "triton" if name == "triton" else None
        x = torch.randn(7, 3, 5, requires_grad=True)
        assert paths.layer_path(layer, x, layer.weight_hh_l0) == name
        out, h_n = layer(x, lengths=torch.tensor([7, 4, 1]))
        h = h_n[0] if isinstance(h_n, tuple) else h_n
        (out.square().sum() + h.sum()).backward()
        results.append([out.detach(), h.detach(), x.grad, *(p.grad for p in layer.parameters())])
    assert_close(results[0], results[1], 1e-5)


def test_bad_kernels_name_what_is_expected():
    with pytest.raises(ValueError, match=r"must be None \(automatic\) or 'triton', not 'cudnn'"):
        Recurrent("gru", 3, 4).kernels = "cudnn"


def test_the_self_check_passes_and_a_broken_kernel_fails_it(monkeypatch):
    assert gpu_path.self_check("cpu") is None
    real = triton_layer._mm
    monkeypatch.setattr(triton_layer, "_mm", lambda a, b, low: real(a, b, low) * 1.001)
    failed = gpu_path.self_check("cpu")
    assert failed is not None and failed.startswith("rnn: the Triton kernels differ from the per-step path")


def test_a_failed_self_check_falls_back_to_the_per_step_path_and_says_why(monkeypatch):
    monkeypatch.setattr(gpu_path, "self_check", lambda device, tolerance=1e-4: "gru: differ by 3.1e-02")
    gpu_path.forget()
    try:
        cuda = torch.device("cuda", 0)  # no GPU is touched: the decision is what is tested
        assert gpu_path.triton_ready(cuda) == (False, "self-check failed: gru: differ by 3.1e-02")
        text = gpu_path.describe(cuda)
        assert text.startswith("per-step PyTorch ops (self-check failed") and "--impl torch" in text
        monkeypatch.setattr(gpu_path, "triton_missing", lambda: "Triton is not installed (no module)")
        gpu_path.forget()
        assert gpu_path.triton_ready(cuda) == (False, "Triton is not installed (no module)")
        monkeypatch.setenv("RNN_WORKBENCH_KERNELS", "0")
        gpu_path.forget()
        assert gpu_path.triton_ready(cuda)[1] == "RNN_WORKBENCH_KERNELS=0 turns the kernels off"
        assert gpu_path.triton_ready(torch.device("cpu"))[0] is False
        # a CPU layer on the automatic choice keeps its CPU path, whatever was decided for CUDA
        layer = Recurrent("gru", 5, 6)
        x = torch.randn(4, 2, 5)
        assert layer.kernels is None and paths.layer_path(layer, x, layer.weight_hh_l0) != paths.TRITON
    finally:
        gpu_path.forget()


def test_tf32_is_off_inside_ieee_fp32_and_restored_after():
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = True
    with gpu_path.ieee_fp32():
        assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
    assert torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


def test_a_run_whose_layers_fell_back_on_a_gpu_says_so_in_workbench_runs(tmp_path, monkeypatch):
    monkeypatch.setattr(gpu_path, "triton_ready", lambda device: (False, "Triton is not installed (x)"))
    notice = gpu_path.fallback_notice(torch.device("cuda", 0))
    assert notice == ("the scratch layers run per-step ops on cuda:0 (Triton is not installed (x)): "
                      f"{gpu_path.FALLBACK_ADVICE}")
    monkeypatch.setattr(gpu_path, "triton_ready", lambda device: (True, "Triton gate kernels"))
    assert gpu_path.fallback_notice(torch.device("cuda", 0)) == ""
    run = tmp_path / "runs" / "on-gpu"
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"task": "charlm", "cell": "gru", "num_layers": 2,
                                                 "hidden_size": 512}))
    (run / "live.json").write_text(json.dumps({"state": "finished", "run_id": "on-gpu", "step": 9,
                                               "path_notice": notice}))
    table = workbench("runs", "--runs-dir", str(tmp_path / "runs")).stdout
    assert f"↳ {notice}" in table and "--impl torch" in table
