"""benchmarks/gpu_check.py --dry-run: the script a borrowed GPU runs, on tiny shapes on this CPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rnn_engine.nn import gpu_path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_check.py"


@pytest.mark.skipif(gpu_path.triton_missing() is not None, reason="Triton is not installed here")
def test_the_dry_run_checks_parity_and_times_every_path(tmp_path):
    out = tmp_path / "gpu.json"
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    done = subprocess.run([sys.executable, str(SCRIPT), "--dry-run", "--out", str(out)], capture_output=True,
                          text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["dry_run"] and report["triton_ready"]
    assert {r["cell"] for r in report["parity"]} == {"rnn-tanh", "rnn-relu", "gru", "lstm"}
    assert all(r["max_abs_diff_output"] < 1e-5 and r["max_abs_diff_grad"] < 1e-5 for r in report["parity"])
    measured = {(r["cell"], r["layers"], r["path"]): r for r in report["speed"]}
    assert len(measured) == 2 * 2 * 4
    for cell in ("gru", "lstm"):
        for layers in (1, 2):
            for path in ("triton", "per-step", "cudnn fp32"):
                assert measured[(cell, layers, path)]["chars_per_s"] > 0
    assert "training chars/s" in done.stdout and "triton/cudnn" in done.stdout
    # the parallel cells: the Triton scan against their equations, then their model on both paths
    assert {r["cell"] for r in report["parallel_parity"]} == {"mingru", "minlstm"}
    assert all(r["max_abs_diff_output"] < 1e-5 and r["max_abs_diff_grad"] < 1e-5
               for r in report["parallel_parity"])
    parallel = {(r["cell"], r["layers"], r["path"]): r for r in report["parallel_speed"]}
    assert len(parallel) == 2 * 2 * 2 and all(r["chars_per_s"] > 0 for r in parallel.values())
    assert "minGRU / minLSTM" in done.stdout


def test_without_a_gpu_or_dry_run_it_says_what_to_do(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is here: the script would measure it")
    done = subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path / "x.json")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "--dry-run" in done.stderr
