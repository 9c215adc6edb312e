"""What `a` sends to a live run: each field read on its own, so one that cannot apply blocks nothing."""

from __future__ import annotations

from rnn_engine.config import default_config
from workbench.live_apply import live_changes, names_with_and


def test_a_field_that_cannot_apply_live_holds_up_nothing_else():
    base = default_config("charlm", data="corpus.txt", lr=3e-3, hidden_size=512)
    form = {name: str(getattr(base, name)) for name in ("lr", "hidden_size", "num_layers", "clip", "epochs")}
    form.update(lr="0.001", hidden_size="1e3", num_layers="3", epochs="9")
    live, rest, errors = live_changes(form, base)
    assert live == {"lr": 0.001}  # sent, although hidden_size is wrong and num_layers fixed for the run
    assert rest == ["hidden_size", "num_layers"]
    assert errors == {"hidden_size": "'1e3' is not a whole number"}  # shown beside its field
    # a live setting that is wrong is an error of its own; the rest is unchanged
    live, rest, errors = live_changes({"lr": "-1", "clip": "2"}, base)
    assert live == {"clip": 2.0} and rest == [] and "lr" in errors


def test_the_fields_are_named_in_english():
    assert names_with_and(["hidden_size"]) == "hidden_size"
    assert names_with_and(["hidden_size", "num_layers"]) == "hidden_size and num_layers"
    assert names_with_and(["a", "b", "c"]) == "a, b and c"
