"""A plotext figure of an exact size, whatever terminal the process believes it is in."""

from __future__ import annotations

import plotext as plt

from ..curves import ChartSettings


def new_figure(width: int, height: int, title: str, xlabel: str | None = None) -> None:
    """Clear plotext's figure and size it `width`×`height` cells, on the dark theme.

    plotext caps a plot at the size of the terminal it finds (the COLUMNS variable or the tty), so
    without `limitsize(False)` a chart in a wide pane was cut to 80 columns wherever that lookup
    said 80 — in tests, under a pipe — and the same chart drew differently on two machines.
    """
    plt.clear_figure()
    plt.limitsize(False, False)
    plt.plotsize(width, height)
    plt.theme("dark")
    plt.title(title)
    if xlabel is not None:
        plt.xlabel(xlabel)


def build_figure(log_y: bool = False, drawn: bool = True) -> str:
    """The figure as text, its y axis logarithmic when `log_y` and something was `drawn` on it.

    plotext fails building a log axis with nothing on it: `l` before a run's first step closed the app.
    """
    if log_y and drawn:
        plt.yscale("log")
    return plt.build()


class ChartKeys:
    """The loss charts' keys (`[` `]` smoothing, `l` log scale) for what draws charts from `chart`."""

    chart: ChartSettings

    def action_smoothing(self, direction: int) -> None:
        self.chart.step_smoothing(direction)
        self.chart_changed()

    def action_log_scale(self) -> None:
        self.chart.log_scale = not self.chart.log_scale
        self.chart_changed()

    def chart_changed(self) -> None:
        """Draw the charts again with the new settings."""
        raise NotImplementedError


def whole_ticks(low: float, high: float, count: int = 5) -> list[int]:
    """About `count` whole numbers spaced 1, 2 or 5 times a power of ten apart, covering low..high:
    a step axis labelled 20, 40, 60 rather than plotext's 21.2, 41.5."""
    if high <= low:
        return [round(low)]
    raw = (high - low) / max(1, count - 1)
    power = 10 ** max(0, len(str(int(raw))) - 1)

    def ticks(step: int) -> list[int]:
        first = -(-int(low) // step) * step  # the first multiple of step at or above low
        return list(range(first, int(high) + 1, step))

    # the round step whose ticks come nearest to `count`
    step = min((m * power for m in (1, 2, 5, 10)), key=lambda s: abs(len(ticks(s)) - count))
    return ticks(step) or [round(low)]
