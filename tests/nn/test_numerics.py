"""Scratch cells and stacks equal torch.nn's RNN/GRU/LSTM in outputs, states and gradients."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rnn_engine import GRUCell, LSTMCell, Recurrent, RNNCell

CASES = [
    ("rnn", torch.nn.RNN, {"nonlinearity": "tanh"}),
    ("rnn", torch.nn.RNN, {"nonlinearity": "relu"}),
    ("gru", torch.nn.GRU, {}),
    ("lstm", torch.nn.LSTM, {}),
]


def _pair(mode, ref_cls, kw, layers, batch_first, dtype, input_size=5, hidden=7, bias=True):
    torch.manual_seed(0)
    ref = ref_cls(input_size, hidden, num_layers=layers, batch_first=batch_first, bias=bias, **kw)
    ours = Recurrent(mode, input_size, hidden, num_layers=layers, batch_first=batch_first, bias=bias, **kw)
    ours.load_state_dict(ref.state_dict())
    return ref.to(dtype), ours.to(dtype)


def _flat(state):
    return state if isinstance(state, tuple) else (state,)


@pytest.mark.parametrize("mode,ref_cls,kw", CASES, ids=["rnn-tanh", "rnn-relu", "gru", "lstm"])
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 1e-5)])
def test_matches_torch_forward_and_gradients(mode, ref_cls, kw, layers, batch_first, dtype, tol):
    ref, ours = _pair(mode, ref_cls, kw, layers, batch_first, dtype)
    shape = (4, 9, 5) if batch_first else (9, 4, 5)
    x = torch.randn(*shape, dtype=dtype)
    h0 = torch.randn(layers, 4, 7, dtype=dtype)
    hx = (h0, torch.randn_like(h0)) if mode == "lstm" else h0
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    out1, s1 = ref(x1, hx)
    out2, s2 = ours(x2, hx)
    torch.testing.assert_close(out2, out1, atol=tol, rtol=0)
    for a, b in zip(_flat(s2), _flat(s1)):
        assert a.shape == b.shape
        torch.testing.assert_close(a, b, atol=tol, rtol=0)
    # a loss that touches every output and the final states
    w = torch.randn_like(out1)
    loss1 = (out1 * w).sum() + sum(s.pow(2).sum() for s in _flat(s1))
    loss2 = (out2 * w).sum() + sum(s.pow(2).sum() for s in _flat(s2))
    loss1.backward()
    loss2.backward()
    torch.testing.assert_close(x2.grad, x1.grad, atol=tol, rtol=0)
    ref_params = dict(ref.named_parameters())
    for name, p in ours.named_parameters():
        torch.testing.assert_close(p.grad, ref_params[name].grad, atol=tol, rtol=0, msg=name)


@pytest.mark.parametrize("mode,ref_cls,kw", CASES, ids=["rnn-tanh", "rnn-relu", "gru", "lstm"])
def test_state_dict_loads_both_ways(mode, ref_cls, kw):
    ref = ref_cls(3, 6, num_layers=2, **kw)
    ours = Recurrent(mode, 3, 6, num_layers=2, **kw)
    assert {k: v.shape for k, v in ours.state_dict().items()} == \
        {k: v.shape for k, v in ref.state_dict().items()}
    assert list(ours.state_dict()) == list(ref.state_dict())
    ref.load_state_dict(ours.state_dict())
    ours.load_state_dict(ref.state_dict())


def test_without_bias_matches_torch():
    ref, ours = _pair("gru", torch.nn.GRU, {}, 2, False, torch.float64, bias=False)
    x = torch.randn(6, 3, 5, dtype=torch.float64)
    torch.testing.assert_close(ours(x)[0], ref(x)[0], atol=1e-10, rtol=0)


def test_unbatched_input_matches_torch():
    ref, ours = _pair("lstm", torch.nn.LSTM, {}, 2, False, torch.float64)
    x = torch.randn(6, 5, dtype=torch.float64)
    out1, (h1, c1) = ref(x)
    out2, (h2, c2) = ours(x)
    torch.testing.assert_close(out2, out1, atol=1e-10, rtol=0)
    torch.testing.assert_close(c2, c1, atol=1e-10, rtol=0)


@pytest.mark.parametrize("mode,ref_cls,kw", CASES, ids=["rnn-tanh", "rnn-relu", "gru", "lstm"])
def test_lengths_match_packed_sequences(mode, ref_cls, kw):
    ref, ours = _pair(mode, ref_cls, kw, 2, False, torch.float64)
    x = torch.randn(7, 4, 5, dtype=torch.float64)
    lengths = torch.tensor([7, 3, 5, 1])
    packed = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, enforce_sorted=False)
    out_p, s1 = ref(packed)
    out1, _ = torch.nn.utils.rnn.pad_packed_sequence(out_p, total_length=7)
    out2, s2 = ours(x, lengths=lengths)
    torch.testing.assert_close(out2, out1, atol=1e-10, rtol=0)
    for a, b in zip(_flat(s2), _flat(s1)):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=0)


@pytest.mark.parametrize("mode", ["rnn", "gru", "lstm"])
def test_token_input_equals_one_hot_input(mode):
    torch.manual_seed(1)
    rnn = Recurrent(mode, 11, 6, num_layers=2).double()
    tokens = torch.randint(0, 11, (8, 3))
    one_hot = torch.nn.functional.one_hot(tokens, 11).double()
    torch.testing.assert_close(rnn(tokens)[0], rnn(one_hot)[0], atol=1e-12, rtol=0)


@pytest.mark.parametrize("cell_cls,ref_cls,kw", [
    (RNNCell, torch.nn.RNNCell, {"nonlinearity": "relu"}),
    (RNNCell, torch.nn.RNNCell, {"nonlinearity": "tanh"}),
    (GRUCell, torch.nn.GRUCell, {}),
    (LSTMCell, torch.nn.LSTMCell, {}),
])
def test_single_cells_match_torch(cell_cls, ref_cls, kw):
    ref = ref_cls(4, 5, **kw).double()
    ours = cell_cls(4, 5, **kw).double()
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(3, 4, dtype=torch.float64)
    h = torch.randn(3, 5, dtype=torch.float64)
    state = (h, torch.randn_like(h)) if cell_cls is LSTMCell else h
    for a, b in zip(_flat(ours(x, state)), _flat(ref(x, state))):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=0)


@pytest.mark.parametrize("mode", ["rnn", "gru", "lstm"])
def test_gradcheck(mode):
    torch.manual_seed(2)
    rnn = Recurrent(mode, 3, 4, num_layers=2).double()
    x = torch.randn(5, 2, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda inp: rnn(inp)[0], (x,))


@settings(max_examples=20, deadline=None)
@given(mode=st.sampled_from(["rnn", "gru", "lstm"]), steps=st.integers(1, 6),
       batch=st.integers(1, 4), inp=st.integers(1, 5), hidden=st.integers(1, 6),
       layers=st.integers(1, 3))
def test_shapes_match_torch(mode, steps, batch, inp, hidden, layers):
    ref_cls = {"rnn": torch.nn.RNN, "gru": torch.nn.GRU, "lstm": torch.nn.LSTM}[mode]
    ref = ref_cls(inp, hidden, num_layers=layers).double()
    ours = Recurrent(mode, inp, hidden, num_layers=layers).double()
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(steps, batch, inp, dtype=torch.float64)
    out1, s1 = ref(x)
    out2, s2 = ours(x)
    assert out2.shape == out1.shape
    torch.testing.assert_close(out2, out1, atol=1e-10, rtol=0)
    for a, b in zip(_flat(s2), _flat(s1)):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=0)


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="mode"):
        Recurrent("transformer", 3, 4)
    with pytest.raises(ValueError, match="nonlinearity"):
        Recurrent("rnn", 3, 4, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="dropout"):
        Recurrent("gru", 3, 4, dropout=1.5)


# -- the rest of torch.nn's interface: bidirectional, proj_size, PackedSequence, unbatched, hx ---------
DROP_IN = [
    ("rnn", torch.nn.RNN, {"nonlinearity": "tanh", "bidirectional": True}),
    ("rnn", torch.nn.RNN, {"nonlinearity": "relu", "bidirectional": True}),
    ("gru", torch.nn.GRU, {"bidirectional": True}),
    ("lstm", torch.nn.LSTM, {"bidirectional": True}),
    ("lstm", torch.nn.LSTM, {"proj_size": 3}),
    ("lstm", torch.nn.LSTM, {"proj_size": 3, "bidirectional": True}),
]
DROP_IN_IDS = ["rnn-tanh-bi", "rnn-relu-bi", "gru-bi", "lstm-bi", "lstm-proj", "lstm-proj-bi"]


def _hx(mode, kw, layers, batch, hidden, dtype):
    d = 2 if kw.get("bidirectional") else 1
    lead = (layers * d,) if batch is None else (layers * d, batch)
    h = torch.randn(*lead, kw.get("proj_size") or hidden, dtype=dtype)
    return (h, torch.randn(*lead, hidden, dtype=dtype)) if mode == "lstm" else h


def _compare(ref, ours, x_ref, x_ours, hx, tol, unpack=lambda o: o):
    out1, s1 = ref(x_ref, hx)
    out2, s2 = ours(x_ours, hx)
    assert type(out2) is type(out1)
    o1, o2 = unpack(out1), unpack(out2)
    torch.testing.assert_close(o2, o1, atol=tol, rtol=0)
    for a, b in zip(_flat(s2), _flat(s1)):
        assert a.shape == b.shape
        torch.testing.assert_close(a, b, atol=tol, rtol=0)
    w = torch.randn_like(o1)
    ((o1 * w).sum() + sum(s.pow(2).sum() for s in _flat(s1))).backward()
    ((o2 * w).sum() + sum(s.pow(2).sum() for s in _flat(s2))).backward()
    ref_params = dict(ref.named_parameters())
    for name, p in ours.named_parameters():
        torch.testing.assert_close(p.grad, ref_params[name].grad, atol=tol, rtol=0, msg=name)


@pytest.mark.parametrize("mode,ref_cls,kw", DROP_IN, ids=DROP_IN_IDS)
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("batch_first", [False, True])
def test_bidirectional_and_projections_match_torch(mode, ref_cls, kw, layers, batch_first):
    ref, ours = _pair(mode, ref_cls, kw, layers, batch_first, torch.float64)
    assert list(ours.state_dict()) == list(ref.state_dict())
    x = torch.randn(*((4, 9, 5) if batch_first else (9, 4, 5)), dtype=torch.float64)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    _compare(ref, ours, x1, x2, _hx(mode, kw, layers, 4, 7, torch.float64), 1e-10)
    torch.testing.assert_close(x2.grad, x1.grad, atol=1e-10, rtol=0)


@pytest.mark.parametrize("mode,ref_cls,kw", CASES + DROP_IN, ids=["rnn-tanh", "rnn-relu", "gru", "lstm"]
                         + DROP_IN_IDS)
@pytest.mark.parametrize("sort", [False, True])
def test_packed_sequences_in_give_packed_sequences_out(mode, ref_cls, kw, sort):
    ref, ours = _pair(mode, ref_cls, kw, 2, False, torch.float64)
    lengths = torch.tensor([9, 7, 5, 1]) if sort else torch.tensor([5, 9, 1, 7])
    x = torch.randn(9, 4, 5, dtype=torch.float64)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    pack = torch.nn.utils.rnn.pack_padded_sequence
    p1, p2 = pack(x1, lengths, enforce_sorted=sort), pack(x2, lengths, enforce_sorted=sort)
    out_ref, _ = ref(p1)
    out_ours, _ = ours(p2)
    assert torch.equal(out_ours.batch_sizes, out_ref.batch_sizes)
    for a, b in ((out_ours.sorted_indices, out_ref.sorted_indices),
                 (out_ours.unsorted_indices, out_ref.unsorted_indices)):
        assert (a is None and b is None) or torch.equal(a, b)
    ref.zero_grad()
    ours.zero_grad()
    _compare(ref, ours, p1, p2, _hx(mode, kw, 2, 4, 7, torch.float64), 1e-10, unpack=lambda o: o.data)
    torch.testing.assert_close(x2.grad, x1.grad, atol=1e-10, rtol=0)


@pytest.mark.parametrize("mode,ref_cls,kw", CASES + DROP_IN, ids=["rnn-tanh", "rnn-relu", "gru", "lstm"]
                         + DROP_IN_IDS)
def test_unbatched_input_with_a_given_state_matches_torch(mode, ref_cls, kw):
    ref, ours = _pair(mode, ref_cls, kw, 2, False, torch.float64)
    x = torch.randn(6, 5, dtype=torch.float64)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    _compare(ref, ours, x1, x2, _hx(mode, kw, 2, None, 7, torch.float64), 1e-10)
    torch.testing.assert_close(x2.grad, x1.grad, atol=1e-10, rtol=0)


def test_torch_refusals_are_refused_here_too():
    with pytest.raises(ValueError, match="proj_size"):
        Recurrent("gru", 3, 4, proj_size=2)
    with pytest.raises(ValueError, match="proj_size"):
        Recurrent("lstm", 3, 4, proj_size=4)
