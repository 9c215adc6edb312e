"""The engine as a library: its public names resolve, its boundaries hold, and the manual's examples run."""

from __future__ import annotations

import importlib
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ["rnn_engine", "rnn_engine.nn", "rnn_engine.data", "rnn_engine.model", "rnn_engine.analysis",
            "rnn_engine.training", "rnn_engine.rundir", "rnn_engine.control", "rnn_engine.cli"]


@pytest.mark.parametrize("package", PACKAGES)
def test_every_public_name_resolves(package):
    module = importlib.import_module(package)
    assert module.__all__ == sorted(set(module.__all__)) or package in ("rnn_engine.rundir",
                                                                          "rnn_engine.control",
                                                                          "rnn_engine.cli")
    assert module.__doc__ and len(module.__doc__.splitlines()[0]) > 20  # it says what it is for
    for name in module.__all__:
        assert getattr(module, name) is not None, f"{package}.{name}"
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        module.nothing_here  # noqa: B018


def test_the_top_level_holds_only_the_shared_vocabulary():
    top = sorted(p.name for p in (ROOT / "rnn_engine").iterdir() if p.suffix == ".py")
    assert top == ["__init__.py", "config.py", "errors.py", "events.py"]


def test_import_contracts_hold():
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    if lint is None:
        pytest.skip("import-linter is not installed (pip install -e '.[dev]')")
    r = subprocess.run([lint], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stdout[-3000:]
    assert "0 broken" in r.stdout


def _without_torch(code: str, cwd: Path, timeout: float = 120) -> str:
    """Run `code` in a fresh interpreter; fail if it imported torch. Returns what it printed."""
    script = textwrap.dedent(code) + textwrap.dedent("""
        import sys
        assert "torch" not in sys.modules, "torch was imported"
        assert "numpy" not in sys.modules, "numpy was imported"
        print("no torch")
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=cwd,
                       timeout=timeout)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.strip().endswith("no torch")
    return r.stdout


def test_the_viewers_commands_never_import_torch(headless, tmp_path):
    _, run_dir = headless("viewed")
    runs = str(run_dir.parent)
    out = _without_torch(f"""
        from workbench.__main__ import main
        assert main(["runs", "--runs-dir", {runs!r}]) == 0
        assert main(["runs", "--runs-dir", {runs!r}, "--json"]) == 0
        assert main(["ctl", "viewed", "status", "--runs-dir", {runs!r}]) == 0
        assert main(["ctl", "viewed", "pause", "--runs-dir", {runs!r}]) == 0
        assert main(["ctl", "viewed", "resume", "--runs-dir", {runs!r}]) == 0
    """, tmp_path)
    assert "viewed" in out and "state: running" in out and "pauses at the next batch" in out


def test_the_app_starts_and_draws_without_torch(headless, tmp_path):
    _, run_dir = headless("drawn")
    _without_torch(f"""
        import asyncio
        from pathlib import Path
        from workbench.app import make_app
        from rnn_engine.config import default_config

        async def first_frames():
            app = make_app(default_config("charlm", data={str(run_dir)!r}), {str(run_dir.parent)!r},
                           attach=Path({str(run_dir)!r}))
            async with app.run_test(size=(160, 48)) as pilot:
                for _ in range(200):
                    if app.session.state == "running" and app.query_one("#status").last is not None:
                        break
                    await pilot.pause(0.05)
                assert app.session.state == "running", app.session.state
                for key in "12345":  # every tab drawn
                    await pilot.press(key)
                    await pilot.pause()

        asyncio.run(first_frames())
    """, tmp_path)


def _manual_examples() -> list[str]:
    """The manual's engine-from-Python examples (docs/python.md), which the README points to."""
    text = (ROOT / "docs" / "python.md").read_text(encoding="utf-8")
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_the_manuals_python_examples_run(tmp_path):
    examples = _manual_examples()
    assert len(examples) == 4
    (tmp_path / "sample_texts").symlink_to(ROOT / "sample_texts")
    # one interpreter for all, as a reader pasting them one after another would have
    script = "\n".join(examples)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # the examples train with precision auto: bf16 where the CPU has it, as a user's would. Forced
    # on a CPU without it (RNN_WORKBENCH_BF16=1, to test those decisions), bf16 is emulated and
    # minutes slower; these examples are about the API, so they take what this CPU really has
    env.pop("RNN_WORKBENCH_BF16", None)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path,
                       timeout=300, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    out = r.stdout.splitlines()
    epochs = [line for line in out if line.startswith("epoch ")]
    assert len(epochs) == 3 and any(line.startswith("completed after ") for line in out)
    sample = next(line for line in out if line.startswith("Shall I compare thee"))
    assert len(sample) > len("Shall I compare thee")
    nakamura = next(line for line in out if line.startswith("Nakamura "))
    assert nakamura.count("(") == 2  # two languages with their probabilities
    assert "same as torch.nn.LSTM: True" in out
    loss = float(next(line for line in out if line.startswith("loss after 60 steps")).split(": ")[1])
    assert loss < 0.5
    # what the script trained is an ordinary run the command line lists
    listed = subprocess.run([sys.executable, "-m", "workbench", "runs", "--json"], capture_output=True,
                            text=True, cwd=tmp_path, env=env, timeout=60)
    assert {r["task"] for r in json.loads(listed.stdout)} == {"charlm", "names"}
