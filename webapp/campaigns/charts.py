"""Inline SVG line charts of per-iteration campaign figures, computed on the server (no JS, no CDN)."""

import math
from dataclasses import dataclass, field

PALETTE = ("#1f6feb", "#d9480f", "#2b8a3e", "#862e9c", "#c92a2a", "#5c7cfa")


@dataclass
class Series:
    name: str
    color: str
    points: str  # "x,y x,y …" for <polyline>
    dots: list[tuple[float, float, str]] = field(default_factory=list)


@dataclass
class LineChart:
    title: str
    width: int
    height: int
    series: list[Series]
    x_ticks: list[tuple[float, str]]
    y_ticks: list[tuple[float, str]]
    plot: tuple[float, float, float, float]  # left, top, right, bottom


def line_chart(
    title: str,
    x_labels: list[str],
    values: dict[str, list[float | None]],
    width: int = 460,
    height: int = 220,
    y_min: float | None = None,
    y_max: float | None = None,
    digits: int = 2,
) -> LineChart | None:
    """One line per series over the iterations; missing values (None) are skipped. None without data."""
    present = [value for series in values.values() for value in series if value is not None]
    if not present or not x_labels:
        return None
    low = min(present) if y_min is None else y_min
    high = max(present) if y_max is None else y_max
    if high <= low:
        high = low + 1.0
    if digits == 0:  # counts: whole-number ticks
        high = low + math.ceil((high - low) / 4) * 4
    left, top, right, bottom = 48.0, 30.0, width - 28.0, height - 30.0
    step = (right - left) / max(len(x_labels) - 1, 1)

    def x_of(index: int) -> float:
        return left + index * step if len(x_labels) > 1 else (left + right) / 2

    def y_of(value: float) -> float:
        return bottom - (value - low) / (high - low) * (bottom - top)

    series = []
    for number, (name, numbers) in enumerate(values.items()):
        dots = [
            (round(x_of(i), 1), round(y_of(v), 1), f"{name}: {v:.{digits}f}")
            for i, v in enumerate(numbers)
            if v is not None
        ]
        series.append(
            Series(name, PALETTE[number % len(PALETTE)], " ".join(f"{x},{y}" for x, y, _ in dots), dots)
        )
    y_ticks = [
        (round(y_of(low + (high - low) * i / 4), 1), f"{low + (high - low) * i / 4:.{digits}f}")
        for i in range(5)
    ]
    x_ticks = [(round(x_of(i), 1), label) for i, label in enumerate(x_labels)]
    return LineChart(title, width, height, series, x_ticks, y_ticks, (left, top, right, bottom))
