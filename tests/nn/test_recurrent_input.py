"""Bad input to `Recurrent` gets an error naming what was expected and what came, as torch.nn's does."""

from __future__ import annotations

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence

from rnn_engine.nn import GRU, LSTM, RNN, GRUCell, LSTMCell, Recurrent, RNNCell


def layer(mode: str = "gru", **kw) -> Recurrent:
    return Recurrent(mode, 10, 20, num_layers=2, **kw)


X = torch.randn(5, 3, 10)  # (steps, batch, features)


@pytest.mark.parametrize("call,error,needles", [
    # the input itself: torch.nn's exception types, its words first, then what came
    (lambda: layer()(torch.randn(2, 5, 3, 10)), ValueError,
     ["Expected input to be 2D or 3D, got 4D instead", "(input shape (2, 5, 3, 10))"]),
    (lambda: layer("rnn")(torch.randn(10)), ValueError,
     ["Expected input to be 2D or 3D, got 1D tensor instead"]),
    (lambda: layer()(torch.randint(0, 10, (2, 5, 3))), ValueError, ["token ids as a 1-D", "got a 3-D"]),
    (lambda: layer()(torch.randn(5, 3, 7)), RuntimeError,
     ["input.size(-1) must be equal to input_size. Expected 10, got 7"]),
    (lambda: layer()(torch.randn(5, 3, 10, dtype=torch.float64)), ValueError,
     ["RNN input dtype (torch.float64) does not match weight dtype (torch.float32)",
      "Convert input: input.to(torch.float32), or convert model: model.to(torch.float64)"]),
    (lambda: layer()(torch.zeros(5, 3, 10, dtype=torch.bool)), TypeError, ["not torch.bool"]),
    (lambda: layer()([[0.0] * 10] * 5), TypeError, ["Tensor or a PackedSequence, not list"]),
    (lambda: layer()(torch.randn(0, 3, 10)), RuntimeError, ["Expected sequence length to be larger than 0"]),
    (lambda: layer(batch_first=True)(torch.randn(3, 0, 10)), RuntimeError, ["sequence length"]),
    # hx: layers, directions, batch, size, its rank and type
    (lambda: layer()(X, torch.zeros(1, 3, 20)), RuntimeError,
     ["Expected hidden size (2, 3, 20), got [1, 3, 20]", "h_0 must have shape"]),
    (lambda: layer(bidirectional=True)(X, torch.zeros(2, 3, 20)), RuntimeError,
     ["num_layers * num_directions", "(4, 3, 20)", "got [2, 3, 20]"]),
    (lambda: layer()(X, torch.zeros(2, 4, 20)), RuntimeError, ["(2, 3, 20)", "got [2, 4, 20]"]),
    (lambda: layer()(X, torch.zeros(2, 3, 21)), RuntimeError, ["got [2, 3, 21]"]),
    (lambda: layer()(X, torch.zeros(3, 20)), RuntimeError,
     ["For batched 3-D input, hx should also be 3-D but got 2-D tensor"]),
    (lambda: layer()(torch.randn(5, 10), torch.zeros(2, 1, 20)), RuntimeError,
     ["For unbatched 2-D input, hx should also be 2-D but got 3-D tensor"]),
    (lambda: layer()(torch.randn(5, 10), torch.zeros(3, 20)), RuntimeError,
     ["Expected hidden size (2, 1, 20), got [3, 1, 20]",
      "(num_layers * num_directions, hidden_size) = (2, 20) for unbatched input"]),
    (lambda: layer()(X, (torch.zeros(2, 3, 20),)), TypeError, ["hx must be one tensor h_0, got tuple"]),
    (lambda: layer("lstm")(X, torch.zeros(2, 3, 20)), TypeError,
     ["hx must be a tuple (h_0, c_0) of two tensors, got Tensor"]),
    (lambda: layer("lstm")(X, (torch.zeros(2, 3, 20), None)), TypeError, ["(h_0, c_0) of two tensors"]),
    (lambda: layer("lstm")(X, (torch.zeros(2, 3, 20), torch.zeros(3, 20))), RuntimeError,
     ["hx and cx should also be 3-D but got (3-D, 2-D) tensors"]),
    (lambda: layer("lstm")(X, (torch.zeros(2, 3, 20), torch.zeros(2, 3, 19))), RuntimeError,
     ["Expected hidden[1] size (2, 3, 20), got [2, 3, 19]", "c_0 must have shape"]),
    (lambda: layer("lstm", proj_size=8)(X, (torch.zeros(2, 3, 20), torch.zeros(2, 3, 20))), RuntimeError,
     ["Expected hidden[0] size (2, 3, 8)", "h_0 must have shape", "proj_size or hidden_size"]),
    (lambda: layer()(X, torch.zeros(2, 3, 20, dtype=torch.float64)), RuntimeError,
     ["h_0 dtype torch.float64 does not match the input's torch.float32"]),
    # lengths (and so a packed sequence's)
    (lambda: layer()(X, None, torch.tensor([5, 2])), ValueError, ["one per sequence (3)", "shape (2,)"]),
    (lambda: layer()(X, None, torch.tensor([5.0, 2.0, 1.0])), ValueError, ["whole numbers"]),
    (lambda: layer()(X, None, torch.tensor([6, 2, 1])), ValueError, ["between 1 and the 5 time steps",
                                                                     "got 1 to 6"]),
    (lambda: layer()(X, None, torch.tensor([5, 0, 1])), ValueError, ["got 0 to 5"]),
])
def test_bad_input_names_what_was_expected(call, error, needles):
    with pytest.raises(error) as caught:
        call()
    message = str(caught.value)
    assert message.startswith("Recurrent(")
    for needle in needles:
        assert needle in message, message


def test_good_input_of_every_shape_still_runs():
    gru, lstm = layer(), layer("lstm", proj_size=8)
    assert gru(X)[0].shape == (5, 3, 20) and gru(torch.randn(5, 10))[0].shape == (5, 20)
    assert layer(batch_first=True)(torch.randn(3, 5, 10))[0].shape == (3, 5, 20)
    assert gru(X, torch.zeros(2, 3, 20), torch.tensor([5, 2, 1]))[0].shape == (5, 3, 20)
    assert lstm(X, (torch.zeros(2, 3, 8), torch.zeros(2, 3, 20)))[0].shape == (5, 3, 8)
    assert gru(torch.randint(0, 10, (5, 3)))[0].shape == (5, 3, 20)  # token ids
    packed = pack_padded_sequence(X, torch.tensor([5, 2, 1]))
    assert gru(packed)[1].shape == (2, 3, 20)
    assert gru(torch.randn(5, 0, 10))[0].shape == (5, 0, 20)  # no sequences: as torch.nn, empty outputs


@pytest.mark.parametrize("call,error,needles", [
    (lambda: GRUCell(10, 20)(torch.randn(3, 10, dtype=torch.float64)), RuntimeError,
     ["GRUCell: input dtype torch.float64 does not match the weights' torch.float32"]),
    (lambda: GRUCell(10, 20)(torch.randn(10), torch.randn(3, 20)), RuntimeError,
     ["GRUCell: hidden0 must be 1-D like the input (unbatched), got 2-D"]),
    (lambda: LSTMCell(10, 20)(torch.randn(3, 10), torch.randn(3, 20)), TypeError,
     ["LSTMCell: hx must be a tuple (h_0, c_0) of two tensors, got Tensor"]),
    (lambda: RNNCell(10, 20)(torch.randn(2, 3, 10)), ValueError,
     ["RNNCell: Expected input to be 1D or 2D, got 3D instead"]),
    (lambda: RNNCell(10, 20, nonlinearity="gelu"), ValueError, ["Unknown nonlinearity 'gelu'"]),
    (lambda: GRUCell(10.0, 20), TypeError, ["input_size should be of type int, got: float"]),
    (lambda: LSTM(3, 5, num_layers=2.0), TypeError, ["num_layers should be of type int, got: float"]),
    (lambda: GRU(3, 5, proj_size=2), ValueError, ["proj_size argument is only supported for LSTM"]),
    (lambda: LSTM(3, 5, proj_size=5), ValueError, ["proj_size has to be smaller than hidden_size"]),
    (lambda: Recurrent("gru", 3, 5, dropout=1.5), ValueError, ["dropout should be a number in range [0, 1]"]),
])
def test_cells_and_constructors_refuse_as_torch_does(call, error, needles):
    with pytest.raises(error) as caught:
        call()
    for needle in needles:
        assert needle in str(caught.value), str(caught.value)


def test_the_drop_ins_take_torchs_positional_order():
    # torch.nn.RNN(input_size, hidden_size, num_layers, nonlinearity, bias, batch_first, dropout,
    # bidirectional)
    args = (4, 6, 2, "relu", False, True, 0.0, True)
    ours, theirs = RNN(*args), torch.nn.RNN(*args)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert (ours.nonlinearity, ours.bias, ours.batch_first, ours.bidirectional) == ("relu", False, True, True)
    # GRU and LSTM have no nonlinearity: their 4th argument is bias
    gru, lstm = GRU(4, 6, 1, False, True), LSTM(4, 6, 1, True, False, 0.0, False, 3)
    assert (gru.bias, gru.batch_first) == (False, True) and lstm.proj_size == 3
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(2, 5, 4)
    torch.testing.assert_close(ours(x)[0], theirs(x)[0], atol=1e-5, rtol=0)
    with pytest.warns(UserWarning, match="non-zero dropout expects num_layers greater than 1"):
        GRU(4, 6, 1, dropout=0.2)
