"""Data-parallel training on this machine: ranks against threads, and what a gradient all-reduce costs.

    python benchmarks/data_parallel.py [--seconds 60] [--corpus FILE] [--nproc 2] [--rounds 30]

1. The default language model trained for `--seconds`, twice each way, alternating: one process
   with every core's threads, and `--nproc N` ranks (torch.distributed's launcher, gloo) with
   cores/N threads each. chars/s comes from the runs' --json summaries (training time only).
2. The all-reduce DDP does every step: a float32 tensor of the default model's gradient size,
   summed over N gloo ranks on this machine; the median of `--rounds`, and the bytes per second.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from rnn_engine.config import default_config
from rnn_engine.training.distributed import cores
from workbench.paths import default_data


def train(corpus: str, seconds: float, nproc: int, runs: Path) -> dict:
    env = dict(os.environ)
    env.pop("OMP_NUM_THREADS", None)  # the launcher picks cores/N; one process uses them all
    out = subprocess.run([sys.executable, "-m", "workbench", "train", "--corpus", corpus, "--runs-dir",
                          str(runs), "--time-budget", str(seconds), "--device", "cpu", "--json",
                          "--nproc", str(nproc)], capture_output=True, text=True, check=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _reduce(rank: int, world: int, port: int, numel: int, rounds: int, out: dict) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(max(1, cores() // world))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    grads = torch.randn(numel)
    times = []
    for _ in range(rounds + 3):
        dist.barrier()
        t0 = time.perf_counter()
        dist.all_reduce(grads)
        times.append(time.perf_counter() - t0)
    if rank == 0:
        out["seconds"] = statistics.median(times[3:])
    dist.destroy_process_group()


def all_reduce_time(numel: int, world: int, rounds: int) -> float:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with mp.Manager() as manager:
        out = manager.dict()
        mp.spawn(_reduce, args=(world, port, numel, rounds, out), nprocs=world)
        return float(out["seconds"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--corpus", default=str(default_data("charlm")))
    p.add_argument("--nproc", type=int, default=2)
    p.add_argument("--rounds", type=int, default=30)
    args = p.parse_args()

    from rnn_engine.data.text import CharCorpus
    from rnn_engine.model.checkpoint import build_model
    from rnn_engine.model.networks import count_parameters

    vocab = len(CharCorpus.from_file(args.corpus).vocab)
    params = count_parameters(build_model(default_config("charlm"), vocab, 0))
    seconds = all_reduce_time(params, args.nproc, args.rounds)
    mb = params * 4 / 1e6
    print(f"all-reduce of the default model's gradients ({params:,} floats, {mb:.1f} MB) over "
          f"{args.nproc} gloo ranks: {seconds * 1e3:.1f} ms median ({mb / seconds / 1e3:.2f} GB/s)")

    rates: dict[str, list[float]] = {"1 rank": [], f"{args.nproc} ranks": []}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(2):
            for nproc, key in ((1, "1 rank"), (args.nproc, f"{args.nproc} ranks")):
                summary = train(args.corpus, args.seconds, nproc, Path(tmp))
                rates[key].append(summary["chars_per_s"])
                print(f"{key:>8}: {summary['chars_per_s']:,.0f} chars/s, {summary['steps']} steps, "
                      f"val {summary['val_loss']:.4f}", flush=True)
    threads = cores()
    for key, values in rates.items():
        n = 1 if key == "1 rank" else args.nproc
        print(f"{key} x {max(1, threads // n)} thread(s): {statistics.mean(values):,.0f} chars/s "
              f"(mean of {len(values)})")


if __name__ == "__main__":
    main()
