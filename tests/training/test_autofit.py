"""The auto defaults: the speed probe and its cache, the rule's choice, and what a run says of it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rnn_engine.config import AUTO_FIELDS, default_config, describe_auto
from rnn_engine.data.text import CharCorpus
from rnn_engine.training import autofit, probe
from tests.conftest import TINY_TEXT

POINTS = {"points": [
    {"name": "big-fast", "train_chars": 900_000, "reference_chars": 6_000_000,
     "best": {"num_layers": 2, "hidden_size": 768, "dropout": 0.45}},
    {"name": "big-slow", "train_chars": 900_000, "reference_chars": 1_000_000,
     "best": {"num_layers": 2, "hidden_size": 384, "dropout": 0.3}},
    {"name": "small", "train_chars": 90_000, "reference_chars": 6_000_000,
     "best": {"num_layers": 2, "hidden_size": 256, "dropout": 0.5}},
    {"name": "names", "task": "names", "train_items": 16_000, "epochs": 8, "balance": False,
     "metric": "accuracy", "best": {"num_layers": 2, "hidden_size": 512, "dropout": 0.5}},
    {"name": "names-balance", "task": "names", "train_items": 16_000, "epochs": 8, "balance": True,
     "metric": "balanced_accuracy", "best": {"num_layers": 1, "hidden_size": 256, "dropout": 0.3}},
]}


@pytest.fixture
def rule(monkeypatch):
    monkeypatch.setattr(autofit, "rule", lambda: POINTS)


def test_the_nearest_point_on_log_scales(rule):
    assert autofit.nearest(900_000, 5_000_000)["name"] == "big-fast"
    assert autofit.nearest(1_200_000, 900_000)["name"] == "big-slow"
    assert autofit.nearest(60_000, 8_000_000)["name"] == "small"
    # a corpus ten times smaller is further away than a machine twice as fast
    assert autofit.nearest(100_000, 3_000_000)["name"] == "small"


def test_where_auto_does_not_apply_it_says_why():
    lm = default_config("charlm", data="x")
    assert autofit.why_not(lm, set()) == ""
    names = default_config("names", data="x")
    assert autofit.why_not(names, set()) == "" and autofit.why_not(names, set(), ranks=2) == ""
    assert "bounded by time" in autofit.why_not(names.updated(epochs=0, time_budget=60.0), set())
    assert "GRU" in autofit.why_not(lm.updated(cell="lstm"), set())
    assert "preset" in autofit.why_not(lm.updated(preset="paper-mingru"), set())
    assert "tutorial" in autofit.why_not(lm.updated(arch="index-rnn"), set())
    assert "epochs" in autofit.why_not(lm.updated(epochs=3), set())
    assert "epochs or steps" in autofit.why_not(lm.updated(max_steps=10), set())
    assert "torchrun" in autofit.why_not(lm, set(), ranks=2)
    assert "given" in autofit.why_not(lm, set(AUTO_FIELDS))
    assert autofit.why_not(lm, {"hidden_size"}) == ""


def _cache_with(tmp_path: Path, config, speeds: dict[tuple[int, int], float]) -> probe.SpeedCache:
    """A speed cache that already knows these shapes on this machine, so nothing is measured."""
    from rnn_engine.nn.precision import resolve
    from rnn_engine.training.devices import resolve_device

    cache = probe.SpeedCache(tmp_path / "speeds.json")
    device = resolve_device(config.device)
    machine = probe.machine_key(device, resolve(config, device)[0])
    for (layers, hidden), rate in speeds.items():
        cache.put(machine, probe.shape_key(config.updated(num_layers=layers, hidden_size=hidden)), rate)
    return cache


def test_fit_takes_the_nearest_points_choice_and_keeps_what_was_given(rule, tmp_path):
    corpus = CharCorpus.from_text("abcdefghij" * 100_000)  # 900,000 training characters
    config = default_config("charlm", data="x", time_budget=300.0, device="cpu")
    cache = _cache_with(tmp_path, config, {(2, 512): 20_000.0, (2, 768): 12_000.0, (2, 384): 30_000.0})
    fitted, why = autofit.fit_text(config, corpus, set(), cache)
    assert (fitted.num_layers, fitted.hidden_size, fitted.dropout) == (2, 768, 0.45)
    assert why.point == "big-fast" and why.cached
    assert why.reference_chars_per_second == 20_000.0 and why.chars_per_second == 12_000.0
    assert why.expected_epochs == pytest.approx(12_000.0 * 300 / 900_000)
    # a slower machine (3,000 chars/s: 900,000 in the budget) is nearer the slow point
    slow = _cache_with(tmp_path / "slow", config, {(2, 512): 3_000.0, (2, 384): 5_000.0})
    fitted, why = autofit.fit_text(config, corpus, set(), slow)
    assert (fitted.hidden_size, fitted.dropout, why.point) == (384, 0.3, "big-slow")
    # what the user gave stays; auto reports only what it set
    fitted, record = autofit.fit(config.updated(hidden_size=640), corpus, {"hidden_size"}, cache)
    assert (fitted.hidden_size, fitted.dropout) == (640, 0.45)
    assert record["settings"] == {"num_layers": 2, "dropout": 0.45} and record["point"] == "big-fast"


def test_the_classifier_follows_its_epochs_and_metric(rule, names_dir):
    from rnn_engine.data.names import NamesData

    data = NamesData.from_dir(names_dir)
    config = default_config("names", data=str(names_dir))
    fitted, record = autofit.fit(config, data, set())
    assert (fitted.num_layers, fitted.hidden_size, fitted.dropout) == (2, 512, 0.5)
    assert record == {"settings": {"num_layers": 2, "hidden_size": 512, "dropout": 0.5}, "point": "names",
                      "metric": "accuracy", "epochs": 8}
    fitted, record = autofit.fit(config.updated(balance=True), data, {"dropout"})
    assert (fitted.num_layers, fitted.hidden_size, fitted.dropout) == (1, 256, 0.3)
    assert record["point"] == "names-balance" and "dropout" not in record["settings"]
    assert describe_auto(record).startswith("auto: layers 1, hidden 256 (the best balanced accuracy "
                                            "measured for 8 epochs; nearest measured point names-balance")


def test_the_probe_times_real_steps_and_the_cache_keeps_them(tmp_path):
    corpus = CharCorpus.from_text(TINY_TEXT)
    config = default_config("charlm", data="x", hidden_size=16, num_layers=1, batch_size=4, seq_len=8,
                            device="cpu", precision="fp32")
    measured = probe.measure(config, corpus, seconds=0.05)
    assert measured["chars_per_second"] > 0 and measured["precision"] == "fp32"
    cache = probe.SpeedCache(tmp_path / "speeds.json")
    rate, cached = probe.speed(config, corpus, cache)
    assert rate > 0 and not cached
    again, cached = probe.speed(config, corpus, probe.SpeedCache(tmp_path / "speeds.json"))
    assert (again, cached) == (pytest.approx(rate, abs=0.1), True)
    # the machine's key names what a speed depends on besides the model
    machine = next(iter(json.loads((tmp_path / "speeds.json").read_text())))
    assert "threads" in machine and "torch" in machine and machine.endswith("fp32")


def test_an_unreadable_cache_is_measured_again(tmp_path):
    bad = tmp_path / "speeds.json"
    bad.write_text("{not json")
    assert probe.SpeedCache(bad).table == {}
    probe.SpeedCache(bad).put("m", "s", 10.0)
    assert json.loads(bad.read_text()) == {"m": {"s": 10.0}}


def test_the_record_reads_as_one_line():
    line = describe_auto({"settings": {"num_layers": 2, "hidden_size": 768, "dropout": 0.45},
                          "reference_chars_per_second": 20000, "chars_per_second": 12000,
                          "expected_epochs": 4.0, "point": "plays-300s-2t", "cached_probe": False})
    assert line.startswith("auto: layers 2, hidden 768, dropout 0.45 (probe: 2x512 trains 20,000")
    assert "~4.0 epochs" in line and "--no-auto" in line
    assert describe_auto({"off": "--no-auto"}) == "auto: off (--no-auto)"


def _train(corpus: Path, runs: Path, cache: Path, *flags: str) -> dict:
    env = {**os.environ, "RNN_WORKBENCH_AUTO": "1", "RNN_WORKBENCH_CACHE": str(cache)}
    cmd = [sys.executable, "-m", "workbench", "train", "--corpus", str(corpus), "--runs-dir", str(runs),
           "--time-budget", "1", "--eval-interval", "0", "--sample-length", "0", "--seq-len", "16",
           "--batch-size", "4", "--device", "cpu", "--precision", "fp32", "--json", *flags]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_run_fits_what_was_not_given_and_says_so(tiny_corpus, tmp_path):
    from rnn_engine.nn import fused

    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "kernels").symlink_to(fused.cache_dir())  # the suite's built kernels, not built again
    summary = _train(tiny_corpus, tmp_path / "runs", cache, "--hidden-size", "24", "--layers", "1")
    auto = summary["auto"]
    assert set(auto["settings"]) == {"dropout"} and auto["chars_per_second"] > 0
    assert auto["expected_epochs"] > 0 and auto["point"]
    config = json.loads((Path(summary["run_dir"]) / "config.json").read_text())
    settings = config.get("config", config)
    assert settings["hidden_size"] == 24 and settings["dropout"] == auto["settings"]["dropout"]
    assert json.loads((cache / "speeds.json").read_text())  # the probe's speeds, for the next run
    first = json.loads((Path(summary["run_dir"]) / "events.jsonl").read_text().splitlines()[0])
    assert first["auto"] == auto
    off = _train(tiny_corpus, tmp_path / "runs", cache, "--hidden-size", "24", "--layers", "1", "--no-auto")
    assert off["auto"] == {"off": "--no-auto"}


def test_a_fitted_runs_own_speed_replaces_the_probes(tmp_path):
    import torch

    config = default_config("charlm", data="x", device="cpu")
    cache = _cache_with(tmp_path, config, {(2, 512): 5_000.0})  # a probe taken on a busy moment
    probe.remember(config, torch.device("cpu"), "fp32", 21_000.0, cache)
    probe.remember(config, torch.device("cpu"), "bf16", 0.0, cache)  # a run with no speed: nothing
    machine = probe.machine_key(torch.device("cpu"), "fp32")
    assert probe.SpeedCache(cache.path).get(machine, probe.shape_key(config)) == 21_000.0


def test_a_started_run_gives_only_what_was_not_left_to_auto():
    from rnn_engine.rundir.launch import training_argv

    config = default_config("charlm", data="x")
    left = training_argv(config, "runs", "r1", left_to_auto=("hidden_size", "dropout"))
    assert "--hidden-size" not in left and "--dropout" not in left and "--num-layers" in left
    assert "--no-auto" not in left
    assert "--no-auto" in training_argv(config, "runs", "r1", left_to_auto=None)
    # a resumed run keeps its settings: there is nothing to fit, so nothing to turn off
    assert "--no-auto" not in training_argv(config, "runs", "r1", resume="last.pt", left_to_auto=None)


def test_a_classifier_run_fits_its_size_to_its_epochs(names_dir, tmp_path):
    env = {**os.environ, "RNN_WORKBENCH_AUTO": "1", "RNN_WORKBENCH_CACHE": str(tmp_path / "cache")}
    cmd = [sys.executable, "-m", "workbench", "train-names", "--data", str(names_dir), "--runs-dir",
           str(tmp_path / "runs"), "--epochs", "1", "--device", "cpu", "--precision", "fp32", "--json"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=env)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    auto = summary["auto"]
    assert auto["metric"] == "accuracy" and auto["epochs"] == 1 and auto["point"].startswith("names")
    assert set(auto["settings"]) == set(AUTO_FIELDS)
    assert summary["parameters"] > 0 and not (tmp_path / "cache" / "speeds.json").exists()  # no probe
