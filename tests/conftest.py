"""Shared fixtures: tiny corpora and names directories written to tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest

TINY_TEXT = "the cat sat on the mat. the dog sat on the log.\n" * 60


@pytest.fixture
def tiny_corpus(tmp_path: Path) -> Path:
    p = tmp_path / "tiny.txt"
    p.write_text(TINY_TEXT, encoding="utf-8")
    return p


@pytest.fixture
def names_dir(tmp_path: Path) -> Path:
    """Two synthetic languages: one ends in -ov, one starts with Mac and ends in -son."""
    d = tmp_path / "names"
    d.mkdir()
    stems = ["Ivan", "Petr", "Smirn", "Kuzn", "Pop", "Vasil", "Sokol", "Mikh", "Fedor", "Morоz",
             "Volk", "Alex", "Lebed", "Kozl", "Nov", "Orl", "Zaits", "Pavl", "Semen", "Egor"]
    (d / "Ruslandic.txt").write_text("\n".join(s + "ov" for s in stems) + "\n", encoding="utf-8")
    (d / "Scotlandic.txt").write_text("\n".join("Mac" + s.lower() + "son" for s in stems) + "\n",
                                      encoding="utf-8")
    return d
