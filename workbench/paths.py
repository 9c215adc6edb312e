"""Where the bundled sample texts are: beside the package in a checkout, or in the working directory."""

from __future__ import annotations

from pathlib import Path

BUNDLED = {"charlm": "shakespeare_plays.txt", "names": "names"}


def sample_texts_dir() -> Path:
    for candidate in (Path(__file__).resolve().parent.parent / "sample_texts", Path.cwd() / "sample_texts"):
        if candidate.is_dir():
            return candidate
    return Path("sample_texts")


def default_data(task: str) -> Path:
    return sample_texts_dir() / BUNDLED[task]
