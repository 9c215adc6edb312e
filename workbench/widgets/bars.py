"""A sparkline drawn as block characters in one colour: cheap enough to redraw every second."""

from __future__ import annotations

import math

from rich.text import Text
from textual.widget import Widget

BLOCKS = " ▁▂▃▄▅▆▇█"


def window_means(values: list[float], buckets: int) -> list[float]:
    """Means of `values` in at most `buckets` equal slices; finite values only.

    A summary by max per column would let one early spike flatten the curve; means of the recent
    window keep the descent visible.
    """
    finite = [v for v in values if math.isfinite(v)]
    if len(finite) <= buckets:
        return finite
    size = len(finite) / buckets
    return [sum(chunk) / len(chunk) for chunk in
            (finite[int(i * size): int((i + 1) * size)] for i in range(buckets)) if chunk]


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


class Bars(Widget):
    """A sparkline of a series, bucketed to the width the widget has when it is drawn.

    Textual's Sparkline blends a colour for every cell on every render; on a slow core that made
    each redraw of the loss panel cost ~10 ms. One style for the whole text costs a fraction.
    The series is bucketed at render time, so a series given before the first layout (a replayed
    run) is drawn at the final width, not at the width the widget had then.
    """

    DEFAULT_CSS = """
    Bars { color: $accent; }
    """

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self._values: list[float] = []
        self._drawn: tuple[int, int] | None = None
        self._text = Text()

    def show(self, values: list[float]) -> None:
        if values == self._values:
            return
        self._values = list(values)
        self._drawn = None
        self.refresh()

    def render(self) -> Text:
        size = (self.size.width, max(1, self.size.height))
        if self._drawn != size:
            self._drawn = size
            rows = bar_rows(window_means(self._values, max(1, size[0])), size[1])
            self._text = Text("\n".join(rows), no_wrap=True, overflow="crop")
        return self._text
