"""Bad input to `Recurrent` gets an error naming what was expected and what came, as torch.nn's does."""

from __future__ import annotations

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence

from rnn_engine.nn import Recurrent


def layer(mode: str = "gru", **kw) -> Recurrent:
    return Recurrent(mode, 10, 20, num_layers=2, **kw)


X = torch.randn(5, 3, 10)  # (steps, batch, features)


@pytest.mark.parametrize("call,error,needles", [
    # the input itself
    (lambda: layer()(torch.randn(2, 5, 3, 10)), ValueError,
     ["2-D (unbatched) or 3-D (batched)", "got a 4-D tensor of shape (2, 5, 3, 10)"]),
    (lambda: layer()(torch.randn(10)), ValueError, ["got a 1-D tensor"]),
    (lambda: layer()(torch.randint(0, 10, (2, 5, 3))), ValueError, ["token ids as a 1-D", "got a 3-D"]),
    (lambda: layer()(torch.randn(5, 3, 7)), ValueError, ["input_size: expected 10, got 7"]),
    (lambda: layer()(torch.randn(5, 3, 10, dtype=torch.float64)), RuntimeError,
     ["input dtype torch.float64 does not match the weights' torch.float32"]),
    (lambda: layer()(torch.zeros(5, 3, 10, dtype=torch.bool)), TypeError, ["not torch.bool"]),
    (lambda: layer()([[0.0] * 10] * 5), TypeError, ["Tensor or a PackedSequence, not list"]),
    (lambda: layer()(torch.randn(0, 3, 10)), ValueError, ["no time steps"]),
    (lambda: layer(batch_first=True)(torch.randn(3, 0, 10)), ValueError, ["no time steps"]),
    # hx: layers, directions, batch, size, its type
    (lambda: layer()(X, torch.zeros(1, 3, 20)), ValueError, ["h_0 must have shape", "(2, 3, 20)",
                                                             "got (1, 3, 20)"]),
    (lambda: layer(bidirectional=True)(X, torch.zeros(2, 3, 20)), ValueError,
     ["num_layers * num_directions", "(4, 3, 20)", "got (2, 3, 20)"]),
    (lambda: layer()(X, torch.zeros(2, 4, 20)), ValueError, ["(2, 3, 20)", "got (2, 4, 20)"]),
    (lambda: layer()(X, torch.zeros(2, 3, 21)), ValueError, ["got (2, 3, 21)"]),
    (lambda: layer()(X, torch.zeros(3, 20)), ValueError, ["for batched input, got (3, 20)"]),
    (lambda: layer()(torch.randn(5, 10), torch.zeros(2, 1, 20)), ValueError,
     ["(num_layers * num_directions, hidden_size) = (2, 20) for unbatched input"]),
    (lambda: layer()(X, (torch.zeros(2, 3, 20),)), TypeError, ["hx must be one tensor h_0, got tuple"]),
    (lambda: layer("lstm")(X, torch.zeros(2, 3, 20)), TypeError,
     ["hx must be a tuple (h_0, c_0) of two tensors, got Tensor"]),
    (lambda: layer("lstm")(X, (torch.zeros(2, 3, 20), None)), TypeError, ["(h_0, c_0) of two tensors"]),
    (lambda: layer("lstm")(X, (torch.zeros(2, 3, 20), torch.zeros(2, 3, 19))), ValueError,
     ["c_0 must have shape", "got (2, 3, 19)"]),
    (lambda: layer("lstm", proj_size=8)(X, (torch.zeros(2, 3, 20), torch.zeros(2, 3, 20))), ValueError,
     ["h_0 must have shape", "proj_size or hidden_size", "(2, 3, 8)"]),
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
