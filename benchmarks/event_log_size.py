"""How fast events.jsonl grows: real runs for a few minutes each, extrapolated to 10 hours.

    python benchmarks/event_log_size.py [--seconds 300] [--corpus FILE]

Two runs: the default language model, and a tiny one that makes hundreds of steps a second (the
worst case for a log that records steps). The log's rate settles after the first minute, when
evaluations, samples and checkpoints have each happened at least once.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from workbench.paths import default_data

TINY = ["--hidden-size", "32", "--num-layers", "1", "--dropout", "0", "--seq-len", "32", "--batch-size", "8"]


def measure(corpus: str, seconds: float, flags: list[str], runs: Path) -> dict:
    out = subprocess.run([sys.executable, "-m", "workbench", "train", "--corpus", corpus, "--runs-dir",
                          str(runs), "--time-budget", str(seconds), "--device", "cpu", "--json", *flags],
                         capture_output=True, text=True, check=True)
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    log = Path(summary["run_dir"]) / "events.jsonl"
    kinds: Counter[str] = Counter()
    sizes: Counter[str] = Counter()
    for line in log.read_text().splitlines():
        kind = json.loads(line)["event"]
        kinds[kind] += 1
        sizes[kind] += len(line) + 1
    return {"bytes": log.stat().st_size, "steps": summary["steps"], "elapsed": summary["elapsed"],
            "kinds": kinds, "sizes": sizes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--corpus", default=str(default_data("charlm")))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for name, flags in (("default LM (2x512 GRU)", []), ("tiny LM (1x32 GRU, batch 8)", TINY)):
            m = measure(args.corpus, args.seconds, flags, Path(tmp) / name.split()[0])
            scale = 36_000 / m["elapsed"]
            print(f"{name}: {m['steps']:,} steps in {m['elapsed']:.0f} s "
                  f"({m['steps'] / m['elapsed']:.1f} steps/s); log {m['bytes'] / 1e6:.2f} MB "
                  f"-> 10 hours: {m['bytes'] * scale / 1e6:.0f} MB, "
                  f"{sum(m['kinds'].values()) * scale:,.0f} lines")
            for kind, count in m["kinds"].most_common():
                print(f"    {kind:22s} {count:7,d} lines {m['sizes'][kind] / 1e6:8.3f} MB "
                      f"({m['sizes'][kind] / count:,.0f} B each)")


if __name__ == "__main__":
    main()
