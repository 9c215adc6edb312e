"""Draw the manual's pictures of the app from the app itself: `python scripts/draw_docs_pictures.py`.

Trains two small real runs in a temporary directory (a GRU on the bundled sonnets for 90 s, and
the name classifier on the bundled names for 6 epochs, about 40 s on two cores), opens the
workbench on each with Textual's pilot, and saves each tab as an SVG under docs/pictures/. Run it
again after the app's look changes; the pictures are then redrawn, not edited by hand.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "pictures"
SIZE = (132, 40)


def train(runs: Path) -> None:
    """A finished language model and a finished classifier, as `workbench train` would leave them."""
    from rnn_engine import Trainer
    from rnn_engine.config import default_config

    # relative paths, as a checkout's top directory names them: the pictures show no machine's paths
    lm = default_config("charlm", data="sample_texts/sonnets.txt", hidden_size=128,
                        num_layers=2, time_budget=90.0, epochs=0, device="cpu", seed=3)
    names = default_config("names", data="sample_texts/names", hidden_size=128, epochs=6,
                           device="cpu", seed=3)
    Trainer(lm, runs_dir=runs, run_id="sonnets-gru").run()
    Trainer(names, runs_dir=runs, run_id="names-gru").run()


async def draw(runs: Path, run_dir: Path, name: str, keys: tuple[str, ...], typed: str = "") -> None:
    from rnn_engine.config import default_config
    from workbench.app import make_app

    # the form shows the bundled corpus as a checkout names it, not where this machine keeps it
    form = default_config("charlm", data="sample_texts/shakespeare_plays.txt")
    app = make_app(form, runs, attach=run_dir, bell=False)
    async with app.run_test(size=SIZE) as pilot:
        for _ in range(200):  # the replay of the run's history, then the runs list
            await pilot.pause(0.05)
            if app.session.state in ("finished", "stopped") and app.query_one("#runs-table").row_count:
                break
        for key in keys:
            await pilot.press(key)
            await pilot.pause(0.3)
        if typed:
            await pilot.press(*typed)
            await pilot.pause(1.5)
        await pilot.pause(1.0)
        app.save_screenshot(filename=f"{name}.svg", path=str(OUT))
    print(f"drew {OUT / (name + '.svg')}")


def main() -> int:
    os.environ.setdefault("RNN_WORKBENCH_BELL", "0")
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)  # the app shows the runs directory as ./runs
        Path("sample_texts").symlink_to(ROOT / "sample_texts")
        runs = Path("runs")
        train(runs)
        shots = [
            ("sonnets-gru", "train", ("1",), ""),
            ("sonnets-gru", "hyperparameters", ("2",), ""),
            ("names-gru", "classifier", ("3", "enter"), "Nakamura"),
            ("sonnets-gru", "runs", ("4",), ""),
            ("sonnets-gru", "inside", ("5",), ""),
        ]
        for run_id, name, keys, typed in shots:
            asyncio.run(draw(runs, runs / run_id, name, keys, typed))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
