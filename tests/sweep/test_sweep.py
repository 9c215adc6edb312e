"""`workbench sweep` as a user runs it: trials are runs, the study grows, two sweeps share it, pruning."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from rnn_engine.rundir.liveness import run_state

from ..conftest import kill_runs, track, workbench

# a trial small enough to take a few seconds: two epochs of a 24-unit GRU on the tiny text
TRIAL = ["--hidden-size", "24", "--num-layers", "1", "--seq-len", "16", "--batch-size", "4", "--epochs", "2",
         "--device", "cpu", "--precision", "fp32", "--sample-length", "0", "--eval-interval", "0"]


@pytest.fixture
def sweeps(tmp_path, tiny_corpus):
    """Run `workbench sweep` in tmp_path; every trial run it started is ended at teardown."""
    runs = tmp_path / "runs"
    track(runs)
    space = tmp_path / "space.toml"
    space.write_text('[space]\nlr = { low = 3e-3, high = 3e-2, log = true }\ncell = ["gru", "lstm"]\n')

    def sweep(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
        return workbench("sweep", "--corpus", str(tiny_corpus), "--space", str(space), "--runs-dir",
                         str(runs), "--seed", "5", *TRIAL, *args, timeout=timeout)

    try:
        yield sweep, runs, space
    finally:
        kill_runs(runs)


def summary_of(r: subprocess.CompletedProcess) -> dict:
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_a_sweep_runs_each_trial_as_a_run_and_a_larger_total_adds_trials(sweeps):
    sweep, runs, _ = sweeps
    first = summary_of(sweep("--trials", "4", "--parallel", "2", "--epochs", "1", "--json"))
    assert first["study"] == "space" and first["storage"].endswith("runs/sweeps/space/study.journal")
    counts = first["trials"]
    assert counts["complete"] + counts["pruned"] == 4 and counts["failed"] == counts["running"] == 0
    listed = {r["run_id"]: r for r in json.loads(workbench("runs", "--runs-dir", str(runs), "--json").stdout)}
    assert sorted(listed) == ["space-000", "space-001", "space-002", "space-003"]
    for number in range(4):
        run_dir = runs / f"space-{number:03d}"
        config = json.loads((run_dir / "config.json").read_text())
        assert config["sweep"]["study"] == "space" and config["sweep"]["trial"] == number
        assert run_state(run_dir).state in ("finished", "pruned") and (run_dir / "last.pt").exists()
    best = first["best"]
    assert best["run_dir"].endswith(f"space-{best['number']:03d}") and set(best["params"]) == {"lr", "cell"}
    assert 0 < best["value"] < 5
    # the same command with a larger total continues the study
    more = summary_of(sweep("--trials", "5", "--epochs", "1", "--json"))
    assert sum(more["trials"].values()) == 5 and (runs / "space-004").is_dir()
    text = sweep("--trials", "5")  # nothing left to run: it says how the study stands
    assert text.returncode == 0 and "study space" in text.stdout and "best: trial" in text.stdout


def test_two_sweep_processes_share_one_study(sweeps, tmp_path):
    sweep, runs, space = sweeps
    cmd = [sys.executable, "-m", "workbench", "sweep", "--corpus", str(tmp_path / "tiny.txt"), "--space",
           str(space), "--runs-dir", str(runs), "--seed", "5", *TRIAL, "--epochs", "1", "--trials", "3",
           "--json"]
    first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    second = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        outs = [p.communicate(timeout=240) for p in (first, second)]
    finally:
        for p in (first, second):
            p.kill()
    assert first.returncode == second.returncode == 0, outs[0][1][-2000:] + outs[1][1][-2000:]
    results = [json.loads(out.strip().splitlines()[-1]) for out, _ in outs]
    # one study: three trials in all, not three each, and every one of them a run
    assert all(sum(r["trials"].values()) == 3 for r in results)
    started = "".join(err for _, err in outs).count(" → run space-")
    assert started == 3 and sorted(p.name for p in runs.iterdir() if p.name != "sweeps") == \
        ["space-000", "space-001", "space-002"]


def test_a_trial_the_pruner_gives_up_on_stops_saved_and_shows_pruned(sweeps, tmp_path, tiny_corpus):
    import optuna

    from rnn_engine.sweep.study import default_storage, open_storage

    sweep, runs, space = sweeps
    space.write_text("[space]\nlr = [0.03, 1e-7]\n")
    storage = default_storage(runs, "space")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(storage=open_storage(storage), study_name="space", direction="minimize")
    for lr in (0.03, 0.03, 1e-7):  # the third learns nothing: its second evaluation is far behind the others'
        study.enqueue_trial({"lr": lr})
    result = summary_of(sweep("--trials", "3", "--epochs", "3", "--json"))
    assert result["trials"] == {"complete": 2, "pruned": 1, "failed": 0, "running": 0}
    pruned = runs / "space-002"
    assert run_state(pruned).state == "pruned" and (pruned / "last.pt").exists()
    log = [json.loads(x) for x in (pruned / "events.jsonl").read_text().splitlines()]
    assert log[-1]["event"] == "RunFinished" and log[-1]["reason"] == "pruned"
    table = workbench("runs", "--runs-dir", str(runs)).stdout
    assert next(line for line in table.splitlines() if line.startswith("space-002")).endswith(" pruned")


def test_a_trial_whose_run_fails_is_told_failed_and_the_sweep_goes_on(sweeps):
    sweep, runs, space = sweeps
    # hidden_size 9000 is over the setting's limit: refused before the trial runs
    space.write_text("[space]\nhidden_size = [24, 9000]\n")
    bad = sweep("--trials", "2")
    assert bad.returncode == 2 and bad.stderr.strip() == \
        "workbench: sweep: space: hidden_size: 9000 cannot be used: must be between 1 and 8192"
    # a combination the settings refuse together: the trial fails, the others run
    space.write_text("[space]\nbatch_size = [4, 60000]\nseq_len = [16, 100000]\n")
    result = summary_of(sweep("--trials", "4", "--json"))
    assert result["trials"]["failed"] >= 1 and sum(result["trials"].values()) == 4


def test_bad_sweep_arguments_are_one_line(tmp_path, tiny_corpus, capsys):
    from rnn_engine.cli.main import main

    space = tmp_path / "space.toml"

    def sweep(*args: str) -> tuple[int, str]:  # in this process: each is refused before any trial starts
        code = main(["sweep", "--space", str(space), "--runs-dir", str(tmp_path / "runs"), *args])
        return code, capsys.readouterr().err.strip()

    space.write_text('[space]\ncolour = ["red"]\n')
    assert sweep("--corpus", str(tiny_corpus), "--trials", "2") == \
        (2, "workbench: sweep: space: colour: no such setting (workbench train --help lists them)")
    space.write_text('[space]\nlr = [1e-3, 1e-2]\n')
    code, err = sweep("--corpus", str(tiny_corpus), "--metric", "accuracy")
    assert code == 2 and "accuracy is for name classifiers" in err
    code, err = sweep("--corpus", str(tmp_path / "nope.txt"))
    assert code == 2 and "nope.txt: no such file" in err
    code, err = sweep("--corpus", str(tmp_path))
    assert code == 2 and "is a directory, expected a text file" in err
    assert not (tmp_path / "runs").exists()  # nothing was started or written
