"""How the loss charts draw a curve: TensorBoard's smoothing, the session's chart settings, thinning."""

from __future__ import annotations

import math
from dataclasses import dataclass

# the weights `[` and `]` step through; TensorBoard's own default is 0.6
SMOOTHING_STEPS = (0.0, 0.3, 0.6, 0.8, 0.9, 0.95, 0.99)


def smooth(values: list[float], weight: float) -> list[float]:
    """TensorBoard's debiased exponential moving average of `values` with `weight` in [0, 1).

    Each finite value moves an average that starts at zero, `last = w * last + (1 - w) * v`, which is
    then divided by `1 - w ** n` (n: the finite values so far) so the start is not pulled towards
    zero. A non-finite value, or a series that is constant, is passed through as it is.
    """
    if not 0.0 <= weight < 1.0:
        raise ValueError(f"smoothing weight must be in [0, 1), not {weight}")
    finite = [v for v in values if math.isfinite(v)]
    if weight == 0.0 or not finite or all(v == finite[0] for v in finite):
        return list(values)
    out, last, count = [], 0.0, 0
    for v in values:
        if not math.isfinite(v):
            out.append(v)
            continue
        last = last * weight + (1.0 - weight) * v
        count += 1
        out.append(last / (1.0 - weight ** count))
    return out


def thin(points: list[tuple[float, float]], most: int) -> list[tuple[float, float]]:
    """At most about `most` points: means of equal runs of consecutive points (a chart shows the trend)."""
    n = max(1, len(points) // max(1, most))
    return [(points[i][0], sum(v for _, v in points[i:i + n]) / len(points[i:i + n]))
            for i in range(0, len(points), n)]


@dataclass
class ChartSettings:
    """How loss charts are drawn in this session: smoothing weight and a log-scale loss axis."""

    smoothing: float = 0.6
    log_scale: bool = False

    def step_smoothing(self, direction: int) -> None:
        """The next weight up (+1) or down (-1) among SMOOTHING_STEPS."""
        steps = SMOOTHING_STEPS
        here = min(range(len(steps)), key=lambda i: abs(steps[i] - self.smoothing))
        self.smoothing = steps[max(0, min(len(steps) - 1, here + direction))]

    def describe(self) -> str:
        smoothing = f"smoothing {self.smoothing:g}" if self.smoothing else "no smoothing"
        return smoothing + (" · log scale" if self.log_scale else "")

    def curve(self, points: list[tuple[float, float]], most: int = 200
              ) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        """(raw, smoothed) points to draw: finite and positive where the axis is logarithmic, thinned."""
        kept = [(x, y) for x, y in points if math.isfinite(y) and (y > 0 or not self.log_scale)]
        smoothed = list(zip([x for x, _ in kept], smooth([y for _, y in kept], self.smoothing)))
        return thin(kept, most), thin(smoothed, most)
