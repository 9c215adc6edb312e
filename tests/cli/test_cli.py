"""The headless command line, run as a user would: a subprocess, its exit code and its output."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

TINY = ["--hidden-size", "24", "--seq-len", "16", "--batch-size", "4", "--device", "cpu",
        "--precision", "fp32"]


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
    # a run is named as attach, ctl and export name it: its id, the start of it, or latest
    run_dir = summary["checkpoint"].rsplit("/", 1)[0]
    run_id = run_dir.rsplit("/", 1)[1]
    for spec in ("latest", run_id, run_id[:12], run_dir):
        named = run("sample", spec, "--runs-dir", str(tmp_path / "runs"), "--prime", "the ", "--length", "40",
                    "--seed", "1")
        assert named.returncode == 0 and named.stdout == s.stdout, (spec, named.stderr)
    missing = run("sample", "nothing-like-it", "--runs-dir", str(tmp_path / "runs"))
    assert missing.returncode == 2 and missing.stderr.strip() == (
        f"workbench: sample: nothing-like-it: no such run (looked for a run directory, and for a run id in "
        f"{tmp_path / 'runs'})")


def test_train_names_json_then_classify(names_dir, tmp_path):
    r = run("train-names", "--data", str(names_dir), "--epochs", "12", "--json", "--dedupe", "--precision",
            "fp32", "--runs-dir", str(tmp_path / "runs"), "--hidden-size", "16", "--num-layers", "1",
            "--lr", "0.01")
    assert r.returncode == 0, r.stderr
    summary = last_json(r.stdout)
    assert {"test_accuracy", "balanced_accuracy", "names_per_s", "checkpoint"} <= set(summary)
    c = run("classify", summary["checkpoint"], "Ivanov", "Macleodson", "--top-k", "2", "--json")
    assert c.returncode == 0, c.stderr
    answer = json.loads(c.stdout)
    assert set(answer) == {"Ivanov", "Macleodson"} and all(len(v) == 2 for v in answer.values())
    # the two synthetic languages are told apart: -ov is Ruslandic, Mac...son Scotlandic
    assert answer["Ivanov"][0][0] == "Ruslandic" and answer["Macleodson"][0][0] == "Scotlandic"
    assert all(v[0][1] >= v[1][1] and abs(v[0][1] + v[1][1] - 1) < 1e-4 for v in answer.values())
    text = run("classify", summary["checkpoint"], "Petrov")
    assert text.returncode == 0 and text.stdout.startswith("Petrov: Ruslandic ")
    latest = run("classify", "latest", "Petrov", "--runs-dir", str(tmp_path / "runs"))
    assert latest.returncode == 0 and latest.stdout == text.stdout, latest.stderr


def test_every_argument_of_sample_and_classify_has_help():
    for command in ("sample", "classify"):
        r = run(command, "--help")
        body = r.stdout.split("options:", 1)[1]
        # argparse prints a flag without help text on a line of its own, followed by nothing
        lines = [line for line in body.splitlines() if line.strip()]
        for i, line in enumerate(lines):
            if line.lstrip().startswith("-") and "  " not in line.strip():
                assert i + 1 < len(lines) and not lines[i + 1].lstrip().startswith("-"), (command, line)
        assert "RUN" in r.stdout and "'latest'" in r.stdout


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
    (["train"], "--corpus FILE is required, unless --resume RUN continues a run"),
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


def test_resume_refuses_what_it_cannot_continue(tiny_corpus, tmp_path, headless):
    runs = str(tmp_path / "runs")
    nope = tmp_path / "nope.pt"
    missing = run("train", "--corpus", str(tiny_corpus), "--resume", str(nope), "--runs-dir", runs, *TINY)
    assert missing.returncode == 2 and missing.stderr.strip() == f"workbench: --resume {nope}: no such file"
    _, live_dir = headless("live")
    live = run("train", "--corpus", str(tiny_corpus), "--resume", str(live_dir), "--runs-dir", runs, *TINY)
    assert live.returncode == 2 and live.stderr.count("\n") == 1, live.stderr
    assert "that run is running (pid" in live.stderr and f"--resume {live_dir / 'last.pt'}" in live.stderr
    done = run("train", "--corpus", str(tiny_corpus), "--epochs", "1", "--run-id", "done", "--runs-dir", runs,
               *TINY)
    assert done.returncode == 0, done.stderr
    foreign = tmp_path / "foreign.txt"
    foreign.write_text("Съешь же ещё этих мягких французских булок, да выпей чаю.\n" * 80, encoding="utf-8")
    other = run("train", "--corpus", str(foreign), "--resume", str(tmp_path / "runs" / "done"), "--runs-dir",
                runs, *TINY)
    assert other.returncode == 2 and other.stderr.count("\n") == 1, other.stderr
    assert "of its characters are not in the vocabulary of the checkpoint" in other.stderr
    assert "'Б'" in other.stderr or "'С'" in other.stderr


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

    from rnn_engine.cli.main import build_parser
    from rnn_engine.cli.train import config_from_args
    from rnn_engine.config import default_config
    from rnn_engine.rundir.launch import command_line, training_argv
    from rnn_engine.training.presets import apply_preset

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
    assert config_from_args(args, task, data) == config
