"""A sparkline drawn as block characters in one colour: cheap enough to redraw every second."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

BLOCKS = " ▁▂▃▄▅▆▇█"


def bar_rows(values: list[float], height: int) -> list[str]:
    """The rows, top first, of a bar chart of `values` scaled from their minimum to their maximum."""
    if not values:
        return [""] * height
    low, high = min(values), max(values)
    span = high - low
    # the lowest value still shows a sliver, so a flat line is visible
    levels = [1 + round((v - low) / span * (height * 8 - 1)) if span > 0 else height * 4 for v in values]
    rows = []
    for row in range(height - 1, -1, -1):
        base = row * 8
        rows.append("".join(BLOCKS[min(8, max(0, level - base))] for level in levels))
    return rows


class Bars(Static):
    """Textual's Sparkline blends a colour for every cell on every render; on a slow core that made
    each redraw of the loss panel cost ~10 ms. One style for the whole text costs a fraction.
    """

    DEFAULT_CSS = """
    Bars { color: $accent; }
    """

    def __init__(self, **kw) -> None:
        super().__init__("", **kw)
        self._shown: list[float] = []

    def show(self, values: list[float]) -> None:
        if values == self._shown:
            return
        self._shown = list(values)
        height = max(1, self.size.height or 3)
        self.update(Text("\n".join(bar_rows(values, height)), no_wrap=True, overflow="crop"),
                    layout=False)
