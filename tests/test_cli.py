"""The headless command line, run as a user would: a subprocess, its exit code and its output."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

TINY = ["--hidden-size", "24", "--seq-len", "16", "--batch-size", "4", "--device", "cpu"]


def run(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "workbench", *args], capture_output=True, text=True,
                          timeout=300, cwd=cwd)


def last_json(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


def test_train_json_then_sample(tiny_corpus, tmp_path):
    r = run("train", "--corpus", str(tiny_corpus), "--epochs", "2", "--json", "--runs-dir",
            str(tmp_path / "runs"), *TINY)
    assert r.returncode == 0, r.stderr
    summary = last_json(r.stdout)
    assert {"val_loss", "train_loss", "chars_per_s", "checkpoint"} <= set(summary)
    assert summary["val_loss"] > 0 and summary["chars_per_s"] > 0 and summary["epochs"] == 2
    s = run("sample", summary["checkpoint"], "--prime", "the ", "--length", "40", "--seed", "1")
    assert s.returncode == 0, s.stderr
    assert s.stdout.startswith("the ") and len(s.stdout.rstrip("\n")) == 44
    again = run("sample", summary["checkpoint"], "--prime", "the ", "--length", "40", "--seed", "1")
    assert again.stdout == s.stdout


def test_train_names_json_then_classify(names_dir, tmp_path):
    r = run("train-names", "--data", str(names_dir), "--epochs", "3", "--json", "--dedupe",
            "--runs-dir", str(tmp_path / "runs"), "--hidden-size", "16", "--num-layers", "1")
    assert r.returncode == 0, r.stderr
    summary = last_json(r.stdout)
    assert {"test_accuracy", "balanced_accuracy", "names_per_s", "checkpoint"} <= set(summary)
    c = run("classify", summary["checkpoint"], "Ivanov", "Macleodson", "--top-k", "2", "--json")
    assert c.returncode == 0, c.stderr
    answer = json.loads(c.stdout)
    assert set(answer) == {"Ivanov", "Macleodson"}
    assert all(len(v) == 2 for v in answer.values())


@pytest.mark.parametrize("command", ["train", "train-names", "sample", "classify", "bench", "attach", "runs",
                                     "ctl"])
def test_help_of_every_command(command):
    r = run(command, "--help")
    assert r.returncode == 0 and "usage: workbench" in r.stdout, r.stderr


def test_progress_output_without_json(tiny_corpus, tmp_path):
    r = run("train", "--corpus", str(tiny_corpus), "--epochs", "1", "--runs-dir", str(tmp_path), *TINY)
    assert r.returncode == 0, r.stderr
    assert "epoch 1: train" in r.stderr and "checkpoint" in r.stdout


@pytest.mark.parametrize("args,needle", [
    (["train", "--corpus", "MISSING.txt"], "MISSING.txt: no such file"),
    (["train", "--corpus", "{corpus}", "--lr", "-3"], "--lr: must be > 0"),
    (["train", "--corpus", "{corpus}", "--hidden-size", "big"], "--hidden-size: 'big' is not a whole number"),
    (["train", "--corpus", "{corpus}", "--cell", "tcn"], "--cell: must be one of rnn, gru, lstm"),
    (["train", "--corpus", "{corpus}", "--dropout", "nan"], "--dropout: must be a finite number"),
    (["train", "--corpus", "{corpus}", "--device", "cuda:7"], "cuda"),
    (["train", "--corpus", "{latin}"], "not valid utf-8 at byte 3"),
    (["train", "--corpus", "{corpus}", "--batch-size", "5000"], "batch_size"),
    (["train-names", "--data", "{empty_dir}"], "no .txt files"),
    (["sample", "{corpus}"], "not a readable checkpoint"),
    (["train"], "the following arguments are required: --corpus"),
    (["frobnicate"], "unknown command 'frobnicate'"),
    (["--colour", "red"], "unrecognized arguments"),
])
def test_bad_input_gives_one_line_and_no_traceback(args, needle, tiny_corpus, tmp_path):
    latin = tmp_path / "latin.txt"
    latin.write_bytes("caf\u00e9".encode("latin-1") * 400)
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    args = [a.format(corpus=tiny_corpus, latin=latin, empty_dir=empty_dir) for a in args]
    r = run(*args, "--runs-dir", str(tmp_path / "runs")) if args[0].startswith("train") else run(*args)
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert needle.lower() in lines[0].lower()
    assert "Traceback" not in r.stderr


def test_latin1_corpus_trains_with_encoding_flag(tmp_path):
    latin = tmp_path / "latin.txt"
    latin.write_bytes("caf\u00e9 cr\u00e8me br\u00fbl\u00e9e. ".encode("latin-1") * 200)
    r = run("train", "--corpus", str(latin), "--encoding", "latin-1", "--epochs", "1", "--json",
            "--runs-dir", str(tmp_path / "runs"), *TINY)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("task,preset", [("charlm", ""), ("names", "tutorial-gru")])
def test_the_command_a_started_run_logs_parses_back_to_its_settings(task, preset, tiny_corpus, names_dir,
                                                                     tmp_path):
    import shlex

    from rnn_engine.cli import _config_from_args, build_parser
    from rnn_engine.config import default_config
    from rnn_engine.launch import command_line, training_argv
    from rnn_engine.presets import apply_preset

    data = str((tiny_corpus if task == "charlm" else names_dir).resolve())
    config = default_config(task, data=data, hidden_size=48, balance=task == "names")
    if preset:
        config = apply_preset(config, preset)
    argv = training_argv(config, tmp_path, "r1")
    assert "" not in argv  # no flag without its value
    # what the app shows as "same as: workbench ...", pasted into a shell
    typed = shlex.split(command_line(argv))
    assert typed[0] == "workbench"
    args = build_parser().parse_args(typed[1:])
    assert _config_from_args(args, task, data) == config
