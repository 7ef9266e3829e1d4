"""Bar charts as plain geometry for an inline SVG: no chart library, no script.

The template draws each bar with its label and value as text and as a `<title>`
(a tooltip, and what assistive technology reads), so the figures are in the page.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass

WIDTH, HEIGHT = 1000, 200
TOP_MARGIN, BOTTOM_MARGIN = 18, 22  # room for the values above and the labels below


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    axis_label: str  # shorter, under the bar
    value: int
    x: float
    y: float
    width: float
    height: float
    show_label: bool  # the axis has room for every few labels only


@dataclass(frozen=True, slots=True)
class BarChart:
    bars: list[Bar]
    width: int
    height: int
    baseline: float  # y of the axis
    maximum: int


def bar_chart(
    points: Sequence[tuple[str, int]],
    *,
    width: int = WIDTH,
    label_every: int = 1,
    shorten: Callable[[str], str] = str,
) -> BarChart:
    """Bars for (label, value) points, left to right, scaled to the largest value."""
    baseline = HEIGHT - BOTTOM_MARGIN
    maximum = max((value for _, value in points), default=0)
    slot = width / max(len(points), 1)
    bars = []
    for i, (label, value) in enumerate(points):
        # Integer values scaled for drawing only: the figures shown are the values.
        height = (baseline - TOP_MARGIN) * value / maximum if maximum else 0.0
        bars.append(
            Bar(
                label=label,
                axis_label=shorten(label),
                value=value,
                x=round(i * slot + slot * 0.1, 2),
                y=round(baseline - height, 2),
                width=round(slot * 0.8, 2),
                height=round(height, 2),
                show_label=(len(points) - 1 - i) % label_every == 0,
            )
        )
    return BarChart(bars, width, HEIGHT, baseline, maximum)
