"""The drop-ins against PyTorch's own module test samples for RNN, GRU, LSTM and their cells.

torch ships the inputs it tests these six modules with (`ModuleInfo.module_inputs_func`) and the
inputs they must refuse (`module_error_inputs_func`). Each sample is a test of its own here: the
drop-in, given torch's module's weights, must compute the same outputs, states and gradients on
every path a layer can take, and refuse each error sample with torch's exception type and a
message its pattern matches.
"""

from __future__ import annotations

import re

import pytest
import torch
from torch.nn.utils.rnn import PackedSequence

from rnn_engine.nn import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell, fused
from rnn_engine.nn.recurrent import Recurrent


def _import_torch_samples():
    """torch's module samples, or None and why not; process-wide settings its import changes put back.

    torch's testing package imports expecttest (which the dev extra installs), freezes the
    torch.backends flags and loads a hypothesis profile of its own; the rest of the suite sets
    those flags (TF32 off around comparisons) and runs hypothesis with its own settings.
    """
    import hypothesis

    profile = hypothesis.settings.get_current_profile_name()
    try:
        from torch.testing._internal import common_modules
    except ImportError as error:  # pragma: no cover - depends on what is installed
        return None, f"torch's module test samples cannot be imported here: {error}"
    finally:
        hypothesis.settings.load_profile(profile)
        torch.backends.flags_frozen.__globals__["__allow_nonbracketed_mutation_flag"] = True
    return common_modules, None


common_modules, WHY_NOT = _import_torch_samples()

OURS = {torch.nn.RNN: RNN, torch.nn.GRU: GRU, torch.nn.LSTM: LSTM,
        torch.nn.RNNCell: RNNCell, torch.nn.GRUCell: GRUCell, torch.nn.LSTMCell: LSTMCell}
# (atol, rtol): float64 to 1e-10 absolute; float32 to 1e-5 with torch's float32 rtol on top, since a
# gradient of magnitude 10 differs by 1e-5 from a sum taken in another order
TOLERANCE = {torch.float32: (1e-5, 1.3e-6), torch.float64: (1e-10, 0.0)}
DTYPES = {"float32": torch.float32, "float64": torch.float64}


def _infos() -> list:
    if common_modules is None:
        return []
    return [info for info in common_modules.module_db if info.module_cls in OURS]


def _sample_ids(kind: str) -> list:
    """(module_info, dtype name, training, index) for every sample; a skip where torch lacks them."""
    if WHY_NOT:
        return [pytest.param(None, None, None, None, marks=pytest.mark.skip(reason=WHY_NOT))]
    found = {info.module_cls for info in _infos()}
    params = [pytest.param(None, None, None, None, marks=pytest.mark.skip(
        reason=f"this torch has no ModuleInfo for {cls.__name__}")) for cls in OURS if cls not in found]
    for info in _infos():
        if (info.module_inputs_func if kind == "inputs" else info.module_error_inputs_func) is None:
            continue
        for dtype_name, dtype in DTYPES.items():
            for training in ((False, True) if kind == "inputs" else (False,)):
                count = len(_samples(info, dtype, training, kind))
                for k in range(count):
                    mode = "train" if training else "eval"
                    name = f"{info.module_cls.__name__}-{dtype_name}-{mode}-{k}"
                    params.append(pytest.param(info, dtype_name, training, k, id=name))
    return params


def _sample(info, dtype_name: str, training: bool, index: int, kind: str):
    torch.manual_seed(index)
    return _samples(info, DTYPES[dtype_name], training, kind)[index]


def _samples(info, dtype, training: bool, kind: str) -> list:
    if kind == "errors":
        return list(info.module_error_inputs_func(info, device="cpu", dtype=dtype, requires_grad=True,
                                                  training=training))
    # the layers' packed-sequence samples come only when asked for (the other functions ignore it)
    return list(info.module_inputs_func(info, device="cpu", dtype=dtype, requires_grad=True,
                                        training=training, with_packed_sequence=True))


# -- what a sample's forward gives, flattened so either side compares tensor by tensor -------------
def _leaf(t):
    if isinstance(t, PackedSequence):
        return PackedSequence(_leaf(t.data), t.batch_sizes, t.sorted_indices, t.unsorted_indices)
    if isinstance(t, torch.Tensor):
        return t.detach().clone().requires_grad_(t.requires_grad)
    if isinstance(t, (tuple, list)):
        return type(t)(_leaf(x) for x in t)
    return t


def _tensors(value) -> list:
    if isinstance(value, PackedSequence):
        return [value.data]
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (tuple, list)):
        return [t for x in value for t in _tensors(x)]
    return []


def _packing(value) -> list:
    """A PackedSequence's bookkeeping, which must come back as the input's."""
    if isinstance(value, PackedSequence):
        return [value.batch_sizes, value.sorted_indices, value.unsorted_indices]
    if isinstance(value, (tuple, list)):
        return [p for x in value for p in _packing(x)]
    return []


def _run(module, args, kwargs, weights):
    """Outputs, and the gradients of a fixed weighted sum of them w.r.t. the inputs and parameters."""
    args, kwargs = _leaf(list(args)), {k: _leaf(v) for k, v in kwargs.items()}
    result = module(*args, **kwargs)
    outputs = _tensors(result)
    if weights is None:
        return result, outputs, []
    inputs = [t for t in _tensors(args) + _tensors(list(kwargs.values())) if t.requires_grad]
    params = [p for _, p in sorted(module.named_parameters())]
    loss = sum((o * w).sum() for o, w in zip(outputs, weights))
    grads = torch.autograd.grad(loss, inputs + params, allow_unused=True)
    return result, outputs, grads


def _paths(ours, dtype, training: bool) -> list[str]:
    """Each path this layer can take on these tensors (see Recurrent._run_layer); a cell has one."""
    if not isinstance(ours, Recurrent):
        return ["cell"]
    paths = ["per-step"]
    if dtype == torch.float32 and not ours.proj_size:
        if fused.load():
            paths.append("fused")
        # under Triton's interpreter here (tests/conftest.py), at ~0.15 s a call: once per sample, as
        # the samples' train and eval twins compute alike (no dropout in any of them)
        if training:
            paths.append("triton")
    return paths


def _on_path(ours, path: str):
    if isinstance(ours, Recurrent):
        ours.use_fused = path != "per-step"
        ours.kernels = "triton" if path == "triton" else None
    return ours


@pytest.mark.parametrize("info,dtype_name,training,index", _sample_ids("inputs"))
def test_every_sample_computes_what_torch_does(info, dtype_name, training, index):
    sample = _sample(info, dtype_name, training, index, "inputs")
    dtype = DTYPES[dtype_name]
    atol, rtol = TOLERANCE[dtype]
    c = sample.constructor_input
    reference = info.module_cls(*c.args, **c.kwargs).to(dtype).train(training)
    ours = OURS[info.module_cls](*c.args, **c.kwargs).to(dtype).train(training)
    assert list(ours.state_dict()) == list(reference.state_dict())
    ours.load_state_dict(reference.state_dict())
    f = sample.forward_input
    # a fixed random weight per output element, so every output's gradient path counts
    weights = [torch.randn_like(o) for o in _run(reference, f.args, f.kwargs, None)[1]]
    expected, expected_out, expected_grads = _run(reference, f.args, f.kwargs, weights)
    for path in _paths(ours, dtype, training):
        got, got_out, got_grads = _run(_on_path(ours, path), f.args, f.kwargs, weights)
        assert type(got) is type(expected) and len(got_out) == len(expected_out), path
        for a, b in zip(_packing(got), _packing(expected)):
            assert (a is None and b is None) or torch.equal(a, b), path
        for k, (a, b) in enumerate(zip(got_out, expected_out)):
            assert a.shape == b.shape and a.dtype == b.dtype, (path, k)
            torch.testing.assert_close(a, b, atol=atol, rtol=rtol,
                                       msg=lambda m, k=k, path=path: f"{path} output {k}: {m}")
        for k, (a, b) in enumerate(zip(got_grads, expected_grads)):
            assert (a is None) == (b is None), (path, k)
            if a is not None:
                torch.testing.assert_close(a, b, atol=atol, rtol=rtol,
                                           msg=lambda m, k=k, path=path: f"{path} grad {k}: {m}")


@pytest.mark.parametrize("info,dtype_name,training,index", _sample_ids("errors"))
def test_every_error_sample_is_refused_as_torch_refuses_it(info, dtype_name, training, index):
    error = _sample(info, dtype_name, training, index, "errors")
    sample, cls = error.module_error_input, OURS[info.module_cls]
    c = sample.constructor_input
    # torch's own module refuses it so, or the sample is not what it says
    with pytest.raises(error.error_type, match=error.error_regex):
        reference = info.module_cls(*c.args, **c.kwargs)
        reference(*sample.forward_input.args, **sample.forward_input.kwargs)
    on_construction = error.error_on == common_modules.ModuleErrorEnum.CONSTRUCTION_ERROR
    with pytest.raises(error.error_type) as caught:
        ours = cls(*c.args, **c.kwargs)
        assert not on_construction, "built what torch refuses to build"
        ours(*sample.forward_input.args, **sample.forward_input.kwargs)
    assert re.search(error.error_regex, str(caught.value)), str(caught.value)
    if isinstance(caught.value, (ValueError, RuntimeError)) and not on_construction:
        assert str(caught.value).startswith(f"{cls.__name__}") or str(caught.value).startswith("Recurrent(")
