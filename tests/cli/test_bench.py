"""The benchmark compares like with like and reports what the issue asks for."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from rnn_engine.model.networks import CharLM, count_parameters
from rnn_engine.training.bench import VOCAB, TorchCharModel, TutorialCharModel, matched_embedding


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("hidden", [256, 512])
def test_torch_baseline_is_parameter_matched(cell, hidden):
    scratch = count_parameters(CharLM(VOCAB, cell, hidden))
    torch_model = count_parameters(TorchCharModel(cell, VOCAB, matched_embedding(cell, hidden), hidden))
    assert abs(torch_model - scratch) / scratch < 0.01


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_tutorial_model_runs(cell):
    import torch

    logits = TutorialCharModel(cell, VOCAB, 16)(torch.randint(0, VOCAB, (5, 3)))
    assert logits.shape == (5, 3, VOCAB)


def test_bench_quick_json(tmp_path):
    r = subprocess.run([sys.executable, "-m", "workbench", "bench", "--quick", "--json"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout.strip().splitlines()[-1])
    assert set(report["ratios"]) == set(report["efficiency"]) == {"rnn", "gru", "lstm"}
    assert all(v > 0 for v in report["ratios"].values())
    assert 0 < max(report["efficiency"].values())
    variants = {r["variant"] for r in report["results"]}
    assert variants == {"scratch", "torch", "torch-H", "tutorial", "gemm", "gemm+head"}
    # every variant measured, each at a positive speed (how fast is the bench's to print, not a test's)
    assert all(r["chars_per_s"] > 0 for r in report["results"]) and len(report["results"]) == 18
    assert set(report["efficiency_all_gemms"]) == {"rnn", "gru", "lstm"}
    assert report["names"]["names_per_s"] > 0
    assert "a/b" in r.stdout


def test_bench_bf16_quick_json():
    r = subprocess.run([sys.executable, "-m", "workbench", "bench", "--precision", "bf16", "--quick",
                        "--json"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout.strip().splitlines()[-1])
    assert set(report["ratios"]) == set(report["speedup_vs_fp32"]) == {"rnn", "gru", "lstm"}
    assert all(v > 0 for v in report["speedup_vs_fp32"].values())
    assert {r["variant"] for r in report["results"]} == {"scratch bf16", "torch bf16", "scratch fp32",
                                                         "gemm bf16"}
    # the scratch bf16 step runs on the fused kernels; its speed against its own GEMMs is reported
    assert "fused C++ kernels" in report["recurrent_path"] and "bf16 GEMMs" in report["recurrent_path"]
    assert set(report["efficiency_vs_gemm"]) == {"rnn", "gru", "lstm"}
    assert all(v > 0 for v in report["efficiency_vs_gemm"].values())
    assert "scratch bf16" in r.stdout.splitlines()[2]  # the table's header


def test_bench_parallel_quick_json():
    r = subprocess.run([sys.executable, "-m", "workbench", "bench", "--parallel", "--quick", "--json"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout.strip().splitlines()[-1])
    rows = {row["cell"]: row for row in report["results"]}
    assert set(rows) == {"gru", "lstm", "mingru", "minlstm"}
    assert all(v["chars_per_s"] > 0 for v in rows.values())
    # the parallel cells' step against its GEMMs alone; the classic ones have the bench's own table for that
    assert 0 < rows["mingru"]["gemm_share"] and rows["gru"]["gemm_share"] is None
    assert report["speedup"]["gru"] == 1.0
    ways = {(s["cell"], s["way"]) for s in report["scans"]}
    assert {("mingru", "log-space"), ("mingru", "per-step"), ("minlstm", "log-space")} <= ways
    assert "vs gru" in r.stdout and "log-space" in r.stdout
