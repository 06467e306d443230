"""Plots as inline SVG, drawn here in Python: no chart library, no script, nothing fetched when the page opens.

Every plot is a <figure class="plot"> around one <svg>; the browser test checks each one drew something. Axes are
labelled with the data's own extremes (first and last x, lowest and highest y), so every number on a plot is one of
the numbers it was drawn from.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from html import escape

from .numbers import sig

WIDTH, HEIGHT = 460, 250
LEFT, RIGHT, TOP, BOTTOM = 62, 14, 40, 42
PALETTE = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#be185d", "#65a30d")
MARKED = 60  # series of at most this many points get a dot (with its value as a tooltip) at every point


@dataclass
class Series:
    name: str
    points: list[tuple[float, float]]
    dashed: bool = False
    colour: str = ""
    marked: bool | None = None  # None: dots when the series is short


@dataclass
class Axes:
    x_label: str
    y_label: str
    log_x: bool = False
    log_y: bool = False
    x_text: Callable[[float], str] = field(default=sig)
    y_text: Callable[[float], str] = field(default=sig)


def finite(points: Sequence[tuple[float, float]], axes: Axes) -> list[tuple[float, float]]:
    """The points a chart can place: finite, and positive on a log axis."""
    return [
        (float(x), float(y))
        for x, y in points
        if x is not None
        and y is not None
        and math.isfinite(x)
        and math.isfinite(y)
        and (x > 0 or not axes.log_x)
        and (y > 0 or not axes.log_y)
    ]


def figure(kind: str, title: str, svg_body: str, height: int = HEIGHT) -> str:
    label = escape(title)
    return (
        f'<figure class="plot" data-plot="{escape(kind)}"><svg viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-label="{label}" xmlns="http://www.w3.org/2000/svg"><text class="title" x="{WIDTH / 2}" y="18" '
        f'text-anchor="middle">{label}</text>{svg_body}</svg></figure>'
    )


def empty(kind: str, title: str, why: str) -> str:
    return f'<figure class="plot empty" data-plot="{escape(kind)}"><p>{escape(title)}: {escape(why)}</p></figure>'


def line_chart(kind: str, title: str, series: Sequence[Series], axes: Axes) -> str:
    """Lines of (x, y) points on shared axes, with a legend when there is more than one."""
    drawn = [Series(s.name, finite(s.points, axes), s.dashed, s.colour, s.marked) for s in series]
    drawn = [s for s in drawn if s.points]
    if not drawn:
        return empty(kind, title, "no data")
    xs = [x for s in drawn for x, _ in s.points]
    ys = [y for s in drawn for _, y in s.points]
    scale_x = scaler(min(xs), max(xs), LEFT, WIDTH - RIGHT, axes.log_x)
    scale_y = scaler(min(ys), max(ys), HEIGHT - BOTTOM, TOP, axes.log_y)
    parts = [frame(axes, (min(xs), max(xs)), (min(ys), max(ys)))]
    for index, s in enumerate(drawn):
        colour = s.colour or PALETTE[index % len(PALETTE)]
        parts.append(polyline(s, colour, scale_x, scale_y))
        if s.marked or (s.marked is None and len(s.points) <= MARKED):
            parts.append(dots(s, colour, scale_x, scale_y, axes))
    if len(drawn) > 1:
        parts.append(legend([(s.name, s.colour or PALETTE[i % len(PALETTE)], s.dashed) for i, s in enumerate(drawn)]))
    return figure(kind, title, "".join(parts))


def scaler(low: float, high: float, start: float, end: float, log: bool) -> Callable[[float], float]:
    if log:
        low, high = math.log10(low), math.log10(high)
    if high == low:  # one value: drawn in the middle
        low, high = low - 0.5, high + 0.5
    span = high - low
    return lambda v: round(start + ((math.log10(v) if log else v) - low) / span * (end - start), 1)


def frame(axes: Axes, x_range: tuple[float, float], y_range: tuple[float, float]) -> str:
    """The two axes, their labels, and the data's extremes at their ends."""
    bottom, right = HEIGHT - BOTTOM, WIDTH - RIGHT
    ticks = [
        f'<text x="{LEFT}" y="{bottom + 14}" text-anchor="start">{escape(axes.x_text(x_range[0]))}</text>',
        f'<text x="{right}" y="{bottom + 14}" text-anchor="end">{escape(axes.x_text(x_range[1]))}</text>',
        f'<text x="{LEFT - 4}" y="{bottom}" text-anchor="end">{escape(axes.y_text(y_range[0]))}</text>',
        f'<text x="{LEFT - 4}" y="{TOP + 8}" text-anchor="end">{escape(axes.y_text(y_range[1]))}</text>',
    ]
    labels = [
        f'<text class="axis" x="{(LEFT + right) / 2}" y="{HEIGHT - 8}" text-anchor="middle">'
        f"{escape(axes.x_label)}{' (log scale)' if axes.log_x else ''}</text>",
        f'<text class="axis" x="12" y="{(TOP + bottom) / 2}" text-anchor="middle" '
        f'transform="rotate(-90 12 {(TOP + bottom) / 2})">{escape(axes.y_label)}'
        f"{' (log scale)' if axes.log_y else ''}</text>",
    ]
    lines = f'<path class="frame" d="M{LEFT},{TOP} V{bottom} H{right}" fill="none"/>'
    return lines + "".join(ticks + labels)


def polyline(s: Series, colour: str, scale_x, scale_y) -> str:
    coordinates = " ".join(f"{scale_x(x)},{scale_y(y)}" for x, y in s.points)
    dash = ' stroke-dasharray="5 3"' if s.dashed else ""
    if len(s.points) == 1:  # a single point draws no line: a dot stands for it
        x, y = s.points[0]
        return f'<circle cx="{scale_x(x)}" cy="{scale_y(y)}" r="3.5" fill="{colour}"/>'
    return f'<polyline points="{coordinates}" fill="none" stroke="{colour}" stroke-width="1.6"{dash}/>'


def dots(s: Series, colour: str, scale_x, scale_y, axes: Axes) -> str:
    tips = (
        f'<circle cx="{scale_x(x)}" cy="{scale_y(y)}" r="2.6" fill="{colour}"><title>{escape(s.name)}: '
        f"{escape(axes.x_label)} {escape(axes.x_text(x))}, {escape(axes.y_text(y))}</title></circle>"
        for x, y in s.points
    )
    return "".join(tips)


def legend(entries: Sequence[tuple[str, str, bool]]) -> str:
    parts, x, y = [], LEFT + 6, TOP - 12  # between the title and the plot: never over a line or an axis label
    for name, colour, dashed in entries:
        dash = ' stroke-dasharray="5 3"' if dashed else ""
        parts.append(f'<line x1="{x}" y1="{y}" x2="{x + 16}" y2="{y}" stroke="{colour}" stroke-width="2"{dash}/>')
        parts.append(f'<text class="legend" x="{x + 20}" y="{y + 4}">{escape(name)}</text>')
        x += 28 + 6.2 * len(name)
    return "".join(parts)


def bar_chart(kind: str, title: str, bars: Sequence[tuple], colour: str = PALETTE[0]) -> str:
    """Horizontal bars: (label, value, the value as the page writes it[, colour]); negative values extend left."""
    bars = [
        (b[0], b[1], b[2], b[3] if len(b) > 3 else colour) for b in bars if b[1] is not None and math.isfinite(b[1])
    ]
    if not bars:
        return empty(kind, title, "no data")
    row, label_width = 22, min(max(7 * max(len(b[0]) for b in bars), 60), 200)
    height = TOP + row * len(bars) + 12
    biggest = max(abs(b[1]) for b in bars) or 1.0
    has_negative = any(b[1] < 0 for b in bars)
    zero = label_width + 10 + (WIDTH - label_width - 80) / 2 * has_negative
    room = (WIDTH - label_width - 80) / (2 if has_negative else 1)
    parts = []
    for index, (label, value, text, fill) in enumerate(bars):
        y, length = TOP + index * row, abs(value) / biggest * room
        start = zero - length if value < 0 else zero
        parts.append(
            f'<text x="{label_width}" y="{y + 14}" text-anchor="end">{escape(label)}</text>'
            f'<rect x="{round(start, 1)}" y="{y + 3}" width="{max(round(length, 1), 1)}" height="{row - 7}" '
            f'fill="{fill}"><title>{escape(label)}: {escape(text)}</title></rect>'
            f'<text x="{round(zero + (room if has_negative else length) + 4, 1)}" y="{y + 14}">{escape(text)}</text>'
        )
    return figure(kind, title, "".join(parts), height)


def heatmap(kind: str, title: str, labels: Sequence[str], matrix: Sequence[Sequence[int]]) -> str:
    """A confusion matrix: rows are the true label, columns the predicted one, each cell's count written in it."""
    n = len(labels)
    if not n:
        return empty(kind, title, "no labels")
    label_width = min(max(7 * max(len(str(label)) for label in labels), 40), 140)
    cell = min((WIDTH - label_width - 20) / n, 48)
    height = TOP + 24 + cell * n + 24
    biggest = max((c for r in matrix for c in r), default=0) or 1
    parts = [
        f'<text x="{label_width + 4 + (i + 0.5) * cell}" y="{TOP + 16}" text-anchor="middle">'
        f"{escape(str(label))}</text>"
        for i, label in enumerate(labels)
    ]
    for i, (label, counts) in enumerate(zip(labels, matrix, strict=False)):
        y = TOP + 24 + i * cell
        parts.append(f'<text x="{label_width}" y="{y + cell / 2 + 4}" text-anchor="end">{escape(str(label))}</text>')
        for j, count in enumerate(counts):
            shade = round(0.08 + 0.85 * count / biggest, 3)
            x, ink = label_width + 4 + j * cell, "#fff" if shade > 0.5 else "#111"
            parts.append(
                f'<rect x="{round(x, 1)}" y="{round(y, 1)}" width="{round(cell - 2, 1)}" height="{round(cell - 2, 1)}" '
                f'fill="{"#16a34a" if i == j else "#dc2626"}" fill-opacity="{shade}"><title>true {escape(str(label))}, '
                f"predicted {escape(str(labels[j]))}: {count}</title></rect>"
                f'<text x="{round(x + cell / 2 - 1, 1)}" y="{round(y + cell / 2 + 4, 1)}" text-anchor="middle" '
                f'fill="{ink}">{count}</text>'
            )
    caption = (
        f'<text class="axis" x="{WIDTH / 2}" y="{height - 6}" text-anchor="middle">'
        "rows: true label; columns: predicted</text>"
    )
    return figure(kind, title, "".join(parts) + caption, round(height))
