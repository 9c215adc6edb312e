"""The auto defaults against the fixed ones: the same corpus and time budget, one run of each, a table.

Each pair runs with a fresh speed cache (so the auto run probes as on a new machine) and the given
thread count; with --side-by-side the two runs of a pair train at the same time (one thread each
suits two cores), otherwise one after the other.

    python benchmarks/auto_check.py --corpus sample_texts/shakespeare_plays.txt --threads 2
    python benchmarks/auto_check.py --corpus sample_texts/shakespeare_plays.txt --threads 1 --side-by-side
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path


def start(args: argparse.Namespace, auto: bool, runs: Path, cache: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "workbench", "train", "--corpus", args.corpus, "--time-budget",
           str(args.budget), "--seed", str(args.seed), "--json", "--runs-dir", str(runs),
           *([] if auto else ["--no-auto"])]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "RNN_WORKBENCH_CACHE": str(cache),
           "RNN_WORKBENCH_AUTO": "1"}
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def summary(process: subprocess.Popen) -> dict:
    out, err = process.communicate()
    if process.returncode != 0:
        raise SystemExit(f"a run failed:\n{err[-2000:]}")
    return json.loads(out.strip().splitlines()[-1])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--corpus", required=True)
    p.add_argument("--budget", type=float, default=300.0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--side-by-side", action="store_true")
    p.add_argument("--seed", type=int, default=1234, help="for both runs (the sweep's runs used 1234)")
    args = p.parse_args()
    from rnn_engine.nn.fused import cache_dir

    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "cache"
        cache.mkdir()
        (cache / "kernels").symlink_to(cache_dir())  # the built kernels; the speeds start empty
        runs = Path(tmp) / "runs"
        if args.side_by_side:
            both = [start(args, a, runs, cache) for a in (False, True)]
            fixed, auto = (summary(b) for b in both)
        else:
            fixed = summary(start(args, False, runs, cache))
            auto = summary(start(args, True, runs, cache))
    print(f"{Path(args.corpus).name}, {args.budget:.0f} s, {args.threads} thread(s), seed {args.seed}"
          f"{', side by side' if args.side_by_side else ''}")
    for name, s in (("fixed", fixed), ("auto", auto)):
        chosen = s.get("auto", {}).get("settings", {})
        print(f"  {name:5}  val {s['val_loss']:.4f}  best {s['best_val_loss']:.4f}  "
              f"train {s['train_loss']:.4f}  {s['chars_per_s']:>9,.0f} chars/s  {s['epochs']:.2f} epochs  "
              f"{s['parameters']:,} parameters  {chosen or ''}")
    print(json.dumps({"fixed": fixed, "auto": auto}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
