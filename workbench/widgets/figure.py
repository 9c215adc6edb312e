"""A plotext figure of an exact size, whatever terminal the process believes it is in."""

from __future__ import annotations

import plotext as plt


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
