"""Exported runs read back with TensorBoard's own reader, and the CSV table of several runs."""

from __future__ import annotations

import csv
import json

import pytest

from rnn_engine import Trainer, default_config

from ..conftest import workbench

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator",
                                        reason="TensorBoard (a dev dependency) reads the files back")


@pytest.fixture
def two_runs(tiny_corpus, names_dir, tmp_path):
    """A tiny language model and a tiny classifier, finished, in one runs directory."""
    runs = tmp_path / "runs"
    lm = default_config("charlm", data=str(tiny_corpus), hidden_size=16, num_layers=1, seq_len=16,
                        batch_size=4, epochs=2, time_budget=0, sample_length=20, device="cpu",
                        precision="fp32", dropout=0.0)
    Trainer(lm, runs_dir=runs, run_id="lm", diag_every=1, diag_interval=0).run()
    Trainer(lm.updated(hidden_size=24, lr=1e-2), runs_dir=runs, run_id="lm2").run()
    names = default_config("names", data=str(names_dir), hidden_size=16, epochs=2, batch_size=8,
                           device="cpu", precision="fp32")
    Trainer(names, runs_dir=runs, run_id="names").run()
    return runs


def events_of(run_dir):
    return [json.loads(x) for x in (run_dir / "events.jsonl").read_text().splitlines()]


def test_tensorboard_reads_back_the_scalars_samples_and_hparams(two_runs, tmp_path):
    out = tmp_path / "tb"
    r = workbench("export", "lm", "names", "--runs-dir", str(two_runs), "--tensorboard", str(out))
    assert r.returncode == 0, r.stderr
    assert f"tensorboard --logdir {out}" in r.stdout
    lm = event_accumulator.EventAccumulator(str(out / "lm"), size_guidance={"scalars": 0, "tensors": 0})
    lm.Reload()
    scalars = set(lm.Tags()["scalars"])
    assert {"train/loss", "train/lr", "train/grad_norm", "train/chars_per_s", "val/loss", "gradients/head",
            "hparams/best_val_loss"} <= scalars
    log = events_of(two_runs / "lm")
    logged = [(e["step"], e["loss"]) for e in log if e["event"] == "StepFinished"]
    read = [(s.step, s.value) for s in lm.Scalars("train/loss")]
    assert [s for s, _ in read] == [s for s, _ in logged]  # every logged step, at its step
    assert all(v == pytest.approx(loss, rel=1e-6) for (_, v), (_, loss) in zip(read, logged))
    epochs = [(e["step"], e["val_loss"]) for e in log if e["event"] == "EpochFinished"]
    assert [(s.step, pytest.approx(s.value, rel=1e-6)) for s in lm.Scalars("val/loss")] == epochs
    samples = lm.Tensors("samples/text_summary")
    assert len(samples) == 2 and [t.step for t in samples] == [s for s, _ in epochs]
    text = samples[0].tensor_proto.string_val[0].decode()
    assert text.startswith("**epoch 1, step") and next(e["sample"] for e in log
                                                       if e["event"] == "EpochFinished")[:10] in text
    # the run's settings and its figures, for TensorBoard's HParams tab
    hparams = lm.PluginTagToContent("hparams")
    assert set(hparams) >= {"_hparams_/experiment", "_hparams_/session_start_info"}
    start = hparams["_hparams_/session_start_info"].decode("latin-1")
    assert "hidden_size" in start and "tiny.txt" in start
    names = event_accumulator.EventAccumulator(str(out / "names"), size_guidance={"scalars": 0})
    names.Reload()
    assert {"val/accuracy", "val/balanced_accuracy", "train/names_per_s", "hparams/test_accuracy"} <= \
        set(names.Tags()["scalars"])
    final = next(e for e in reversed(events_of(two_runs / "names")) if e["event"] == "RunFinished")
    accuracy = final["summary"]["test_accuracy"]
    assert names.Scalars("hparams/test_accuracy")[-1].value == pytest.approx(accuracy)


def test_csv_has_a_row_per_logged_step_and_evaluation_and_the_settings_that_differ(two_runs, tmp_path):
    table = tmp_path / "runs.csv"
    r = workbench("export", "lm", "lm2", "--runs-dir", str(two_runs), "--csv", str(table))
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(table.open()))
    header = list(rows[0])
    # the settings the two runs differ in, and only those, beside the fixed columns
    assert header[:3] == ["run_id", "config.hidden_size", "config.lr"] and "config.cell" not in header
    for run, hidden in (("lm", "16"), ("lm2", "24")):
        log = events_of(two_runs / run)
        mine = [row for row in rows if row["run_id"] == run]
        steps = [row for row in mine if row["kind"] == "step"]
        evals = [row for row in mine if row["kind"] == "epoch"]
        assert len(steps) == sum(e["event"] == "StepFinished" for e in log)
        assert len(evals) == sum(e["event"] == "EpochFinished" for e in log) == 2
        assert all(row["config.hidden_size"] == hidden for row in mine)
        assert [int(row["step"]) for row in mine] == sorted(int(row["step"]) for row in mine)
        assert all(row["val_loss"] == "" and float(row["train_loss"]) > 0 for row in steps)
        assert all(float(row["val_loss"]) > 0 and row["train_loss"] == "" for row in evals)
    assert r.stdout.strip() == f"{len(rows)} rows of 2 run(s) written to {table}"


def test_export_refuses_what_it_cannot_do_in_one_line(two_runs, tmp_path):
    nowhere = workbench("export", "lm", "--runs-dir", str(two_runs))
    assert nowhere.returncode == 2 and "--tensorboard DIR and/or --csv FILE" in nowhere.stderr
    missing = workbench("export", "nothing", "--runs-dir", str(two_runs), "--csv", str(tmp_path / "x.csv"))
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "no such run" in missing.stderr
    # a directory of runs exports them all
    r = workbench("export", str(two_runs), "--csv", str(tmp_path / "all.csv"))
    assert r.returncode == 0 and "of 3 run(s)" in r.stdout
