"""The measurements behind the auto defaults: language-model shapes trained for what a budget buys.

Each point is a corpus, a time budget and a speed (threads, precision). For each candidate shape the
script first measures this machine's characters a second at that speed (`training.probe`), turns the
budget into optimizer steps, and then trains the shape for exactly those steps (`--max-steps`, so a
run's result does not depend on how busy the machine is while it runs: two runs go side by side on
one thread each). Every result is one line of `benchmarks/auto_fit/sweep.jsonl`; runs already there
are not repeated. `fit` then writes the rule the workbench reads (`rnn_engine/training/auto_rule.json`).

    python benchmarks/auto_sweep.py run plays-300s-2t sonnets-300s-2t --jobs 2
    python benchmarks/auto_sweep.py fit
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "auto_fit" / "sweep.jsonl"
RULE = ROOT / "rnn_engine" / "training" / "auto_rule.json"
TEXTS = ROOT / "sample_texts"
B, T = 64, 100  # the language model's default batch: the rule keeps them



def c(layers: int, hidden: int, dropout: float, **more: float) -> dict[str, float]:
    """A candidate: the settings it gives (the others keep their defaults)."""
    return {"num_layers": layers, "hidden_size": hidden, "dropout": dropout, **more}


# the candidates of each kind of point; the first is the fixed default
PLAYS = [c(2, 512, 0.3), c(2, 512, 0.45), c(2, 512, 0.2), c(2, 768, 0.3), c(2, 384, 0.2),
         c(2, 512, 0.2, lr=0.005), c(2, 768, 0.2), c(2, 512, 0.2, batch_size=32), c(2, 768, 0.1)]
QUICK = [c(2, 512, 0.3), c(2, 512, 0.2), c(2, 384, 0.2), c(2, 768, 0.2), c(2, 512, 0.2, lr=0.005),
         c(2, 256, 0.1)]
SMALL = [c(2, 512, 0.3), c(2, 512, 0.5), c(2, 256, 0.3), c(2, 256, 0.5), c(2, 128, 0.2), c(1, 128, 0.0)]
# name: (corpus, characters of it used (0: all), budget seconds, threads, precision, candidates)
POINTS: dict[str, tuple[str, int, float, int, str, list[dict[str, float]]]] = {
    "plays-300s-2t": ("shakespeare_plays.txt", 0, 300, 2, "bf16", PLAYS),
    "plays-300s-1t": ("shakespeare_plays.txt", 0, 300, 1, "bf16", QUICK),
    "plays-60s-2t": ("shakespeare_plays.txt", 0, 60, 2, "bf16", QUICK),
    "sonnets-300s-2t": ("sonnets.txt", 0, 300, 2, "bf16", SMALL),
    "sonnets-300s-1t": ("sonnets.txt", 0, 300, 1, "bf16", SMALL),
    "plays300k-300s-2t": ("shakespeare_plays.txt", 300_000, 300, 2, "bf16", SMALL),
    "plays-300s-2t-fp32": ("shakespeare_plays.txt", 0, 300, 2, "fp32", QUICK),
}
# the name classifier's budget is its epochs, so its points need no speed: (epochs, --balance,
# candidates); it is chosen by accuracy, or by balanced accuracy with --balance
NAMES = [c(2, 256, 0.3), c(2, 512, 0.3), c(2, 512, 0.5), c(2, 128, 0.2), c(1, 256, 0.3), c(2, 256, 0.5)]
NAMES_POINTS: dict[str, tuple[int, bool, list[dict[str, float]]]] = {
    "names-8ep": (8, False, NAMES),
    "names-8ep-balance": (8, True, NAMES),
}


def corpus_file(name: str, chars: int, tmp: Path) -> Path:
    """The corpus, or its first `chars` characters in a file of their own."""
    path = TEXTS / name
    if not chars:
        return path
    part = tmp / f"{path.stem}-{chars}.txt"
    part.write_text(path.read_text(encoding="utf-8")[:chars], encoding="utf-8")
    return part


def shape(candidate: dict[str, float]) -> tuple[int, int, int]:
    """What a candidate's speed depends on: layers, width and batch."""
    return int(candidate["num_layers"]), int(candidate["hidden_size"]), int(candidate.get("batch_size", B))


def speeds(corpus: Path, threads: int, precision: str, candidates: list[dict[str, float]]) -> dict:
    """chars/s of each shape at `threads` threads, measured one after the other."""
    import torch

    from rnn_engine.config import default_config
    from rnn_engine.data.text import CharCorpus
    from rnn_engine.training.probe import speed

    torch.set_num_threads(threads)
    text = CharCorpus.from_file(corpus)
    out = {}
    for candidate in candidates:
        layers, hidden, batch = key = shape(candidate)
        if key not in out:
            config = default_config("charlm", data=str(corpus), num_layers=layers, hidden_size=hidden,
                                    batch_size=batch, precision=precision, device="cpu")
            out[key] = speed(config, text)[0]
    return out


def flags(candidate: dict[str, float]) -> list[str]:
    return [f for k, v in candidate.items() for f in ("--" + k.replace("_", "-"), str(v))]


def workbench(*args: str) -> dict:
    """`workbench ARGS --device cpu --no-auto --json` on one thread: the run's summary."""
    cmd = [sys.executable, "-m", "workbench", *args, "--device", "cpu", "--no-auto", "--json"]
    done = subprocess.run(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def record(row: dict) -> None:
    with RESULTS.open("a") as f:
        f.write(json.dumps(row) + "\n")
    print(json.dumps(row), flush=True)


def train(corpus: Path, candidate: dict[str, float], steps: int, precision: str, runs: Path) -> dict:
    return workbench("train", "--corpus", str(corpus), *flags(candidate), "--max-steps", str(steps),
                     "--time-budget", "0", "--eval-interval", "0", "--sample-length", "0", "--precision",
                     precision, "--runs-dir", str(runs))


def names_split(tmp: Path) -> tuple[Path, int]:
    """The bundled names' training split, as a names directory of its own, and how many names its
    own training split holds: a point is chosen on a part of it, never on the test names."""
    from rnn_engine.data.names import NamesData

    data = NamesData.from_dir(TEXTS / "names")
    out = tmp / "names-train"
    out.mkdir()
    for i, label in enumerate(data.labels):
        names = "".join(n + "\n" for n, k in data.train if k == i)
        (out / f"{label}.txt").write_text(names, encoding="utf-8")
    return out, len(NamesData.from_dir(out).train)


def run_names_point(name: str, jobs: int) -> None:
    epochs, balance, candidates = NAMES_POINTS[name]
    done = [r["settings"] for r in load() if r["point"] == name]
    todo = [s for s in candidates if s not in done]
    with tempfile.TemporaryDirectory() as tmp:
        data, train_items = names_split(Path(tmp))

        def one(candidate: dict[str, float]) -> None:
            start = time.time()
            s = workbench("train-names", "--data", str(data), *flags(candidate), "--epochs", str(epochs),
                          "--time-budget", "0", "--balance", "yes" if balance else "no", "--runs-dir",
                          str(Path(tmp) / "runs"))
            record({"point": name, "task": "names", "epochs": epochs, "balance": balance,
                    "settings": candidate, "train_items": train_items, "parameters": s["parameters"],
                    "accuracy": s["test_accuracy"], "balanced_accuracy": s["balanced_accuracy"],
                    "took": round(time.time() - start)})

        with ThreadPoolExecutor(jobs) as pool:
            list(pool.map(one, todo))


def run_point(name: str, jobs: int) -> None:
    if name in NAMES_POINTS:
        run_names_point(name, jobs)
        return
    corpus_name, chars, budget, threads, precision, shapes = POINTS[name]
    done = [r["settings"] for r in load() if r["point"] == name]
    todo = [s for s in shapes if s not in done]
    if not todo:
        return
    with tempfile.TemporaryDirectory() as tmp:
        corpus = corpus_file(corpus_name, chars, Path(tmp))
        rate = speeds(corpus, threads, precision, todo)

        def one(candidate: dict[str, float]) -> None:
            steps = max(1, math.ceil(rate[shape(candidate)] * budget / (shape(candidate)[2] * T)))
            start = time.time()
            s = train(corpus, candidate, steps, precision, Path(tmp) / "runs")
            record({"point": name, "corpus": corpus_name, "corpus_chars": chars, "budget": budget,
                    "threads": threads, "precision": precision, "settings": candidate,
                    "chars_per_second": round(rate[shape(candidate)]), "steps": steps,
                    "epochs": round(s["epochs"], 2), "parameters": s["parameters"],
                    "val_loss": s["val_loss"], "best_val_loss": s["best_val_loss"],
                    "train_loss": s["train_loss"], "took": round(time.time() - start)})

        with ThreadPoolExecutor(jobs) as pool:
            list(pool.map(one, todo))


def load() -> list[dict]:
    if not RESULTS.exists():
        return []
    return [json.loads(line) for line in RESULTS.read_text().splitlines() if line.strip()]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="what", required=True)
    r = sub.add_parser("run", help="measure the named points (all when none is named)")
    r.add_argument("points", nargs="*", help=f"of {', '.join([*POINTS, *NAMES_POINTS])}")
    r.add_argument("--jobs", type=int, default=2, help="runs side by side, one thread each")
    sub.add_parser("fit", help="write the rule from the results")
    args = p.parse_args()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    if args.what == "run":
        known = [*POINTS, *NAMES_POINTS]
        unknown = set(args.points) - set(known)
        if unknown:
            p.error(f"no point {', '.join(sorted(unknown))}; there are {', '.join(known)}")
        for name in args.points or known:
            run_point(name, args.jobs)
        return 0
    from fit_auto_rule import write_rule  # beside this script

    write_rule(load(), RULE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
