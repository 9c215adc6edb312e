"""`workbench inspect`: units ranked by what they track, a planted unit found, output in and out of colour."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess

import pytest
import torch

from rnn_engine.analysis.inside import FEATURES, features, inspection, rank_units, saturation, trace
from rnn_engine.analysis.render import render
from rnn_engine.config import default_config
from rnn_engine.data.vocab import Vocab
from rnn_engine.model import checkpoint as ckpt_io
from rnn_engine.model.sampling import classify

from ..conftest import workbench

TEXT = 'he said "go on" and she said "no, stay here" then left. "why" he asked.\n' * 4


def quote_tracker() -> tuple[torch.nn.Module, Vocab]:
    """A 2-layer ReLU RNN whose layer 1 unit 0 is exactly 1 inside quotes and 0 outside, by hand.

    Layer 0 keeps the state in two units: a = inside and no quote now, b = outside and a quote
    now (a' = relu(a + b - 2q), b' = relu(q - a - b)); each is a threshold of the last state and the
    input, so a plain recurrent layer can hold a toggle. Layer 1 reads inside = a + b.
    """
    vocab = Vocab.from_text(TEXT)
    config = default_config("charlm", data="x", cell="rnn", nonlinearity="relu", hidden_size=2,
                            num_layers=2, dropout=0.0)
    model = ckpt_io.build_model(config, len(vocab))
    quote = vocab.stoi['"']
    with torch.no_grad():
        for p in model.rnn.parameters():
            p.zero_()
        model.rnn.weight_ih_l0[:, quote] = torch.tensor([-2.0, 1.0])
        model.rnn.weight_hh_l0.copy_(torch.tensor([[1.0, 1.0], [-1.0, -1.0]]))
        model.rnn.weight_ih_l1.copy_(torch.tensor([[1.0, 1.0], [0.0, 0.0]]))
    return model, vocab


def test_a_planted_quote_unit_is_found_first_with_a_score_near_one():
    model, vocab = quote_tracker()
    tr = trace(model, vocab, TEXT)
    names, feats = features(TEXT)
    inside = feats[:, names.index("inside quotes")]
    assert torch.equal(tr.states[1][:, 0].double(), inside)  # the construction does what it says
    best = rank_units(tr, TEXT)[0]
    assert (best.layer, best.unit, best.feature) == (1, 0, "inside quotes")
    assert best.score == pytest.approx(1.0, abs=1e-6) and best.correlation > 0
    assert saturation(tr) == {}  # a vanilla RNN has no gates


def test_gated_cells_report_saturation_per_layer_and_gate():
    vocab = Vocab.from_text(TEXT)
    for cell, gates in (("gru", {"r", "z"}), ("lstm", {"i", "f", "o"})):
        config = default_config("charlm", data="x", cell=cell, hidden_size=8, num_layers=2)
        model = ckpt_io.build_model(config, len(vocab))
        tr = trace(model, vocab, TEXT)
        assert [s.shape for s in tr.states] == [(len(TEXT), 8)] * 2
        # the recorded states are the model's own: the top layer's equals a plain forward pass
        model.eval()
        with torch.no_grad():
            out, _ = model.rnn(vocab.encode(TEXT)[:, None])
        torch.testing.assert_close(tr.states[1], out[:, 0], rtol=1e-5, atol=1e-6)
        sat = saturation(tr)
        assert set(sat) == {"layer 0", "layer 1"} and set(sat["layer 0"]) == gates
        g = sat["layer 1"][sorted(gates)[0]]
        assert len(g["left"]) == len(g["right"]) == 8
        assert all(0.0 <= a + b <= 1.0 for a, b in zip(g["left"], g["right"]))


def save(model: torch.nn.Module, vocab: Vocab, path) -> None:
    config = default_config("charlm", data="x", cell="rnn", nonlinearity="relu", hidden_size=2,
                            num_layers=2, dropout=0.0)
    ckpt_io.save(ckpt_io.Checkpoint(config, vocab, model.state_dict()), path)


def inspect(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return workbench("inspect", *args, env=env)


def test_inspect_json_has_the_units_sorted_with_one_activation_per_character(tmp_path):
    model, vocab = quote_tracker()
    save(model, vocab, tmp_path / "q.pt")
    r = inspect(str(tmp_path / "q.pt"), "--prime", TEXT, "--top", "2", "--unit", "0:1", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    units = out["units"]
    assert [(u["layer"], u["unit"]) for u in units][0] == (1, 0) and units[0]["feature"] == "inside quotes"
    assert [u["score"] for u in units[:2]] == sorted((u["score"] for u in units[:2]), reverse=True)
    assert (units[-1]["layer"], units[-1]["unit"]) == (0, 1)  # asked for with --unit
    assert all(len(u["activations"]) == len(TEXT) for u in units)
    assert units[0]["activations"][:9] == [0.0] * 8 + [1.0]  # he said "...
    assert out["saturation"] == {}


def test_inspect_without_colour_marks_each_character_in_ascii(tmp_path):
    model, vocab = quote_tracker()
    save(model, vocab, tmp_path / "q.pt")
    text = tmp_path / "t.txt"
    text.write_text(TEXT)
    r = inspect(str(tmp_path / "q.pt"), "--text", str(text), "--top", "1",
                env={**os.environ, "NO_COLOR": "1"})
    assert r.returncode == 0, r.stderr
    assert "\x1b[" not in r.stdout and r.stdout.isascii() is False  # '↵' marks the newlines
    lines = r.stdout.splitlines()
    i = lines.index('  he said "go on" and she said "no, stay here" then left. "why" he asked.↵')
    line, inside = TEXT.splitlines()[0], False
    marks = ""
    for ch in line:
        inside = inside != (ch == '"')
        marks += "#" if inside else " "
    assert lines[i + 1] == "  " + marks.rstrip() and marks.count("#") == 6 + 14 + 4
    bad = inspect(str(tmp_path / "q.pt"), "--prime", "x", "--unit", "5:0")
    assert bad.returncode == 2 and "the model has 2 layer(s) of 2 units" in bad.stderr


def test_colour_sets_both_foreground_and_background():
    out = io.StringIO()
    render("ab\n", [-1.0, 1.0, 0.0], True, out)
    text = out.getvalue()
    assert "\x1b[38;5;231;48;5;21ma" in text and "\x1b[38;5;231;48;5;196mb" in text
    assert text.endswith("\x1b[0m\n")


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_reading_in_chunks_equals_reading_one_character_at_a_time(cell):
    text = (TEXT * 12)[:3000]  # 23 chunks, each started from an estimate and corrected
    vocab = Vocab.from_text(text)
    torch.manual_seed(1)
    config = default_config("charlm", data="x", cell=cell, hidden_size=16, num_layers=2)
    model = ckpt_io.build_model(config, len(vocab))
    chunked, plain = trace(model, vocab, text), trace(model, vocab, text, chunked=False)
    for a, b in zip(chunked.states, plain.states):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-4)


def test_the_planted_toggle_survives_chunked_reading():
    # its state is the parity of the quotes so far: no chunk can guess it, so every one is re-read
    model, vocab = quote_tracker()
    text = TEXT * 10
    tr = trace(model, vocab, text)
    names, feats = features(text)
    assert torch.equal(tr.states[1][:, 0].double(), feats[:, names.index("inside quotes")])


def test_an_inspection_carries_ranks_activations_and_the_gradient_through_time():
    model, vocab = quote_tracker()
    result = inspection(model, vocab, TEXT, units=[(0, 1)])
    assert result["kind"] == "charlm" and result["text"] == TEXT
    assert result["ranked"][0][:3] == [1, 0, "inside quotes"] and len(result["ranked"]) == 4
    assert list(result["activations"])[0] == "0:1"  # the asked unit comes first
    values = base64.b64decode(result["activations"]["1:0"])
    assert [v / 127 for v in values] == FEATURES["inside quotes"](TEXT)
    gradient = result["gradient"]
    assert len(gradient) == len(TEXT) and gradient[-1] is None
    assert all(g is not None and g >= 0 for g in gradient[:-1])


def test_a_classifier_is_read_letter_by_letter():
    config = default_config("names", data="x", hidden_size=8, num_layers=1)
    vocab = Vocab.from_text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ '-")
    labels = ["English", "Greek", "Irish", "Italian"]
    model = ckpt_io.build_model(config, len(vocab), len(labels))
    result = inspection(model, vocab, "Ó Néill", labels)
    assert result["text"] == "O Neill" and len(result["letters"]) == 7
    last = result["letters"][-1]
    assert [lab for lab, _ in last] == [lab for lab, _ in classify(model, vocab, labels, ["O Neill"], 3)[0]]
    assert all(len(top) == 3 and top[0][1] >= top[1][1] >= top[2][1] for top in result["letters"])


def test_inspect_on_a_live_run_is_done_by_the_run(headless):
    _, run_dir = headless("live")
    r = inspect(str(run_dir), "--prime", TEXT, "--top", "3", "--unit", "0:7", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["read_by"].startswith("by the live run at step")
    assert len(out["units"]) == 4 and (out["units"][-1]["layer"], out["units"][-1]["unit"]) == (0, 7)
    assert all(len(u["activations"]) == len(TEXT) and -1 <= min(u["activations"]) for u in out["units"])


def test_features_seen_too_few_times_rank_nothing():
    from rnn_engine.analysis.inside import MIN_OCCURRENCES, Trace, occurrences, too_rare

    text = "To be, or not (to be) that is the question"
    steps = len(text)
    drift = torch.linspace(-1, 1, steps)  # a unit that only drifts as it reads
    vowel = torch.tensor(FEATURES["vowel"](text), dtype=torch.float32)
    tr = Trace("rnn", [torch.stack([drift, vowel], dim=1)], [])
    rare = too_rare(text)
    # one line, one parenthesis: each seen once, so nothing can be said of them
    assert rare["start of line"] == 1 and rare["inside parentheses"] == 1 and rare["position in line"] == 1
    assert "vowel" not in rare and occurrences(FEATURES["vowel"](text))[0] >= MIN_OCCURRENCES
    ranked = rank_units(tr, text)
    assert (ranked[0].unit, ranked[0].feature) == (1, "vowel") and ranked[0].score == pytest.approx(1.0)
    assert ranked[1].feature not in rare  # the drifting unit follows no feature seen once
    # a text too short for any feature: units listed in order, with none
    short = rank_units(Trace("rnn", [torch.stack([drift[:3], vowel[:3]], dim=1)], []), "To ")
    assert [(u.unit, u.feature, u.score) for u in short] == [(0, "—", 0.0), (1, "—", 0.0)]
