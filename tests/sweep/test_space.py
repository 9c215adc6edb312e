"""A sweep's space is checked field by field before any trial starts."""

from __future__ import annotations

import pytest

from rnn_engine.config import RunConfig
from rnn_engine.sweep.space import SpaceError, parse_space, read_space


def test_a_space_of_ranges_and_choices_reads_back_as_it_was_written(tmp_path):
    path = tmp_path / "space.toml"
    path.write_text('[space]\nlr = { low = 1e-4, high = 1e-2, log = true }\nhidden_size = [256, 512]\n'
                    'cell = ["gru", "lstm"]\ndropout = { low = 0.0, high = 0.5 }\n'
                    'num_layers = { low = 1, high = 3, step = 1 }\ncarry_state = [true, false]\n')
    space = read_space(path)
    dims = {d.name: d for d in space.dimensions}
    assert list(dims) == ["lr", "hidden_size", "cell", "dropout", "num_layers", "carry_state"]
    assert (dims["lr"].kind, dims["lr"].low, dims["lr"].high, dims["lr"].log) == ("float", 1e-4, 1e-2, True)
    assert dims["hidden_size"].choices == (256, 512) and dims["num_layers"].kind == "int"
    assert dims["dropout"].describe() == "0 .. 0.5" and dims["cell"].describe() == "gru | lstm"
    again = tmp_path / "again.toml"
    again.write_text(space.to_toml())
    assert read_space(again) == space


@pytest.mark.parametrize("table,needle", [
    ({"colour": ["red"]}, "space: colour: no such setting"),
    ({"data": ["a.txt"]}, "space: data: the data and the task are the sweep's own"),
    ({"lr": {"low": 1e-2, "high": 1e-4}}, "space: lr: the range is empty: low (0.01) must be below high"),
    ({"lr": {"low": 0.0, "high": 1e-2, "log": True}}, "space: lr: a log range must start above 0"),
    ({"lr": {"low": 1e-4}}, "space: lr: a range needs both low and high"),
    ({"lr": {"low": 1e-4, "high": 1e-2, "mean": 3}}, "space: lr: unknown key 'mean'"),
    ({"dropout": {"low": 0.0, "high": 1.5}}, "space: dropout: 1.5 cannot be used: must be in [0, 1)"),
    ({"lr": {"low": -1.0, "high": 1.0}}, "space: lr: -1.0 cannot be used: must be > 0"),
    ({"hidden_size": [256, "big"]}, "space: hidden_size: 'big' is not a whole number"),
    ({"hidden_size": {"low": 8.5, "high": 64}}, "space: hidden_size: low must be a whole number"),
    ({"cell": ["gru", "tcn"]}, "space: cell: 'tcn' cannot be used: must be one of rnn, gru, lstm"),
    ({"cell": {"low": 1, "high": 2}}, "space: cell: a str setting takes a list of choices"),
    ({"cell": []}, "space: cell: the list of choices is empty"),
    ({"cell": ["gru", "gru"]}, "space: cell: a choice is given twice"),
    ({"lr": 0.01}, "space: lr: give a list of choices or a table"),
])
def test_a_bad_space_is_one_line_naming_the_field(table, needle):
    with pytest.raises(SpaceError) as caught:
        parse_space(table)
    assert needle in str(caught.value) and "\n" not in str(caught.value)


def test_the_values_are_checked_with_the_sweeps_other_settings():
    # a bidirectional choice is fine for a classifier, and refused for a language model
    assert parse_space({"bidirectional": [True, False]}, RunConfig(task="names", data="d"))
    with pytest.raises(SpaceError, match="bidirectional: True cannot be used: a language model"):
        parse_space({"bidirectional": [True, False]}, RunConfig(task="charlm", data="d"))


def test_a_file_that_is_not_a_space(tmp_path):
    for text, needle in (("[space\n", "not valid TOML"), ("lr = 1\n", r"no \[space\] table")):
        path = tmp_path / "bad.toml"
        path.write_text(text)
        with pytest.raises(SpaceError, match=needle):
            read_space(path)
    with pytest.raises(SpaceError, match="missing.toml: No such file"):
        read_space(tmp_path / "missing.toml")
