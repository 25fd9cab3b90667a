"""Small SVG charts for the audit report, written directly (no plotting library to import:
the report is a model-free command and must stay fast).

A :class:`Chart` is a grid of :class:`Panel` s; a panel collects marks (bars, lines, steps,
points, a horizontal rule, labels) in data coordinates, fits its scales to them when the
chart is rendered, and draws axes with round ticks, a grid, a legend and its titles. The x
scale is ``linear``, ``log``, ``time`` (POSIX seconds, labelled as UTC dates) or ``band``
(categories). Output is deterministic for the same input: coordinates are rounded and every
id carries the chart's name, so several charts can share one page.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Literal

XKind = Literal["linear", "log", "time", "band"]
Scale = Callable[[float | str], float]  # data to pixels
Corner = Literal["upper left", "lower left", "lower right", "upper right"]
# The default colour cycle (Tableau 10) for marks given no colour.
CYCLE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
FONT = 11  # px
CHAR_W = 0.6 * FONT  # an estimate of one character's width, for layout only
TEXT = "#333333"
MUTED = "#555555"
_MARGIN = (26, 14, 44, 58)  # top, right, bottom, left (px) around each panel's plot area
_TIME_STEPS = (
    60,
    300,
    900,
    3600,
    3 * 3600,
    6 * 3600,
    12 * 3600,
    86400,
    2 * 86400,
    7 * 86400,
    14 * 86400,
    30 * 86400,
    91 * 86400,
    365 * 86400,
)


def _n(v: float) -> str:
    """A coordinate, rounded for stable output."""
    text = f"{v:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _text(
    x: float, y: float, s: str, *, anchor: str = "middle", size: int = FONT, **kw: str
) -> str:
    attrs = "".join(f' {k.replace("_", "-")}="{v}"' for k, v in kw.items())
    return (
        f'<text x="{_n(x)}" y="{_n(y)}" text-anchor="{anchor}" font-size="{size}"'
        f"{attrs}>{escape(s)}</text>"
    )


def nice_ticks(lo: float, hi: float, n: int = 5, *, integer: bool = False) -> list[float]:
    """About ``n`` round ticks (steps of 1, 2 or 5 times a power of ten) covering [lo, hi]."""
    if hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / max(1, n)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    if integer:
        step = max(1.0, round(step))
    first = math.ceil(lo / step - 1e-9) * step
    count = math.floor((hi - first) / step + 1e-9) + 1
    return [round(first + i * step, 10) for i in range(count)]


def _label(v: float) -> str:
    return f"{v:g}"


def time_ticks(lo: float, hi: float, n: int = 5) -> list[tuple[float, str]]:
    """Round UTC times (minutes to years) covering [lo, hi], labelled as short dates."""
    span = max(hi - lo, 1.0)
    step = next((s for s in _TIME_STEPS if span / s <= n), _TIME_STEPS[-1])
    fmt = "%m-%d %H:%M" if step < 86400 else "%Y-%m-%d"
    first = math.ceil(lo / step) * step
    ticks, t = [], float(first)
    while t <= hi + 1e-6:
        ticks.append((t, dt.datetime.fromtimestamp(t, dt.UTC).strftime(fmt)))
        t += step
    return ticks


@dataclass
class _Series:
    kind: Literal["line", "step", "points", "bars", "hline", "note"]
    xs: list[float | str]
    ys: list[float]
    color: str
    label: str | None = None
    bottoms: list[float] = field(default_factory=list)
    marker: bool = False
    text: str = ""
    show_values: bool = False


@dataclass
class Panel:
    """One plot area: marks in data coordinates, drawn when the chart renders."""

    x: XKind = "linear"
    title: str = ""
    xlabel: str = ""
    ylabel: str = ""
    legend: Corner | None = "upper left"
    ylim: tuple[float, float] | None = None
    yticks: list[float] | None = None
    integer_x: bool = False
    grid: bool = False
    message: str | None = None  # an empty panel says why
    series: list[_Series] = field(default_factory=list)
    _cycle: int = 0

    def _color(self, color: str | None) -> str:
        if color is not None:
            return color
        self._cycle += 1
        return CYCLE[(self._cycle - 1) % len(CYCLE)]

    def line(
        self,
        xs: Sequence[float],
        ys: Sequence[float],
        *,
        color: str | None = None,
        label: str | None = None,
        marker: bool = True,
        step: bool = False,
    ) -> str:
        """A polyline (``step``: post steps, each value held until the next x); returns its
        colour."""
        picked = self._color(color)
        kind: Literal["line", "step"] = "step" if step else "line"
        self.series.append(_Series(kind, list(xs), list(ys), picked, label, marker=marker))
        return picked

    def points(
        self, xs: Sequence[float], ys: Sequence[float], *, color: str, label: str | None = None
    ) -> None:
        self.series.append(_Series("points", list(xs), list(ys), color, label))

    def bars(
        self,
        categories: Sequence[str],
        heights: Sequence[float],
        *,
        color: str | Sequence[str],
        bottoms: Sequence[float] | None = None,
        label: str | None = None,
        show_values: bool = False,
    ) -> None:
        """Bars on a ``band`` axis, stacked on ``bottoms``; ``color`` per bar or for all."""
        colors = [color] * len(heights) if isinstance(color, str) else list(color)
        for i, (c, h) in enumerate(zip(categories, heights, strict=True)):
            base = 0.0 if bottoms is None else bottoms[i]
            self.series.append(
                _Series(
                    "bars",
                    [c],
                    [h],
                    colors[i],
                    label if i == 0 else None,
                    bottoms=[base],
                    show_values=show_values,
                )
            )

    def hline(self, y: float, *, color: str = TEXT) -> None:
        self.series.append(_Series("hline", [], [y], color))

    def note(self, x: float, y: float, text: str, *, color: str) -> None:
        """A small label 6 px above a data point."""
        self.series.append(_Series("note", [x], [y], color, text=text))

    # -- rendering -------------------------------------------------------------------------

    def _categories(self) -> list[str]:
        seen: dict[str, None] = {}
        for s in self.series:
            if s.kind == "bars":
                seen.update(dict.fromkeys(str(x) for x in s.xs))
        return list(seen)

    def _x_range(self) -> tuple[float, float]:
        xs = [float(x) for s in self.series if s.kind != "bars" for x in s.xs]
        if not xs:
            return (1.0, 10.0) if self.x == "log" else (0.0, 1.0)
        lo, hi = min(xs), max(xs)
        if self.x == "log":  # a margin of a fifth of a decade each side
            return lo / 10**0.2, hi * 10**0.2
        pad = (hi - lo) * 0.04 or (3600.0 if self.x == "time" else 0.5)
        return lo - pad, hi + pad

    def _y_range(self) -> tuple[float, float]:
        if self.ylim is not None:
            return self.ylim
        ys = [y for s in self.series if s.kind != "note" for y in s.ys]
        for s in self.series:
            if s.kind == "bars":
                ys += [b + y for b, y in zip(s.bottoms, s.ys, strict=True)]
        lo = min([0.0, *ys])
        hi = max([1.0, *ys])
        ticks = nice_ticks(lo, hi)
        return min(lo, ticks[0]), max(hi, ticks[-1]) + (hi - lo) * 0.08

    def render(self, x0: float, y0: float, w: float, h: float, uid: str) -> str:
        top, right, bottom, left = _MARGIN
        px, py, pw, ph = x0 + left, y0 + top, w - left - right, h - top - bottom
        parts = [f'<rect x="{_n(px)}" y="{_n(py)}" width="{_n(pw)}" height="{_n(ph)}" '
                 'fill="#ffffff" stroke="#cccccc"/>']  # fmt: skip
        if self.title:
            parts.append(_text(px + pw / 2, y0 + 16, self.title, fill=TEXT, font_weight="bold"))
        if self.message is not None:
            parts.append(_text(px + pw / 2, py + ph / 2, self.message, fill=MUTED))
            return "".join(parts)
        cats = self._categories()
        xlo, xhi = self._x_range()
        ylo, yhi = self._y_range()

        def sx(v: float | str) -> float:
            if self.x == "band":
                band = pw / max(1, len(cats))
                return px + band * (cats.index(str(v)) + 0.5)
            if self.x == "log":
                a, b = math.log10(xlo), math.log10(xhi)
                return px + (math.log10(float(v)) - a) / (b - a) * pw
            return px + (float(v) - xlo) / (xhi - xlo) * pw

        def sy(v: float | str) -> float:
            return py + ph - (float(v) - ylo) / (yhi - ylo) * ph

        parts += self._axes(px, py, pw, ph, cats, (xlo, xhi), (ylo, yhi), sx, sy)
        clip = f"{uid}-clip"
        parts.append(f'<clipPath id="{clip}"><rect x="{_n(px)}" y="{_n(py)}" '
                     f'width="{_n(pw)}" height="{_n(ph)}"/></clipPath>')  # fmt: skip
        marks: list[str] = []
        band = min(pw / max(1, len(cats)) * 0.7, 60.0)
        for s in self.series:
            marks += _marks(s, sx, sy, band, (px, px + pw))
        parts.append(f'<g clip-path="url(#{clip})">{"".join(marks)}</g>')
        parts += self._legend(px, py, pw, ph)
        return "".join(parts)

    def _axes(
        self,
        px: float,
        py: float,
        pw: float,
        ph: float,
        cats: list[str],
        xr: tuple[float, float],
        yr: tuple[float, float],
        sx: Scale,
        sy: Scale,
    ) -> list[str]:
        parts = []
        yt = self.yticks if self.yticks is not None else nice_ticks(*yr)
        for t in yt:
            if not yr[0] - 1e-9 <= t <= yr[1] + 1e-9:
                continue
            y = sy(t)
            if self.grid:
                parts.append(f'<line x1="{_n(px)}" x2="{_n(px + pw)}" y1="{_n(y)}" y2="{_n(y)}" '
                             'stroke="#dddddd"/>')  # fmt: skip
            parts.append(_text(px - 6, y + 4, _label(t), anchor="end", fill=TEXT))
        xt: list[tuple[float | str, str]]
        if self.x == "band":
            every = max(1, math.ceil(len(cats) * 7 * CHAR_W / max(pw, 1) / 1.2))
            xt = [(c, c) for i, c in enumerate(cats) if i % every == 0]
        elif self.x == "log":
            lo, hi = math.ceil(math.log10(xr[0])), math.floor(math.log10(xr[1]))
            xt = [(10.0**e, f"{10.0**e:g}") for e in range(lo, hi + 1)]
        elif self.x == "time":
            xt = [(t, s) for t, s in time_ticks(*xr, n=max(2, int(pw // 110)))]
        else:
            xt = [(t, _label(t)) for t in nice_ticks(*xr, integer=self.integer_x)]
        for value, label in xt:
            x = sx(value)
            half = CHAR_W * len(label) / 2
            if not px - 0.5 <= x <= px + pw + 0.5 or x + half > px + pw + _MARGIN[1]:
                continue  # outside the plot, or its label would be cut at the edge
            if self.grid and self.x != "band":
                parts.append(f'<line x1="{_n(x)}" x2="{_n(x)}" y1="{_n(py)}" y2="{_n(py + ph)}" '
                             'stroke="#dddddd"/>')  # fmt: skip
            parts.append(_text(x, py + ph + 15, label, fill=TEXT))
        if self.xlabel:
            parts.append(_text(px + pw / 2, py + ph + 34, self.xlabel, fill=TEXT))
        if self.ylabel:
            cx, cy = px - 44, py + ph / 2
            parts.append(
                f'<text x="{_n(cx)}" y="{_n(cy)}" text-anchor="middle" font-size="{FONT}" '
                f'fill="{TEXT}" transform="rotate(-90 {_n(cx)} {_n(cy)})">{escape(self.ylabel)}'
                "</text>"
            )
        return parts

    def _legend(self, px: float, py: float, pw: float, ph: float) -> list[str]:
        entries = [(s.label, s.color) for s in self.series if s.label]
        if not entries or self.legend is None:
            return []
        width = 26 + CHAR_W * max(len(label) for label, _ in entries)
        height = 6 + 15 * len(entries)
        left = self.legend.endswith("left")
        x = px + 8 if left else px + pw - 8 - width
        y = py + 8 if self.legend.startswith("upper") else py + ph - 8 - height
        parts = [f'<rect x="{_n(x)}" y="{_n(y)}" width="{_n(width)}" height="{_n(height)}" '
                 'fill="#ffffff" fill-opacity="0.85" stroke="#cccccc"/>']  # fmt: skip
        for i, (label, color) in enumerate(entries):
            row = y + 13 + 15 * i
            parts.append(f'<rect x="{_n(x + 6)}" y="{_n(row - 8)}" width="12" height="8" '
                         f'fill="{color}"/>')  # fmt: skip
            parts.append(_text(x + 22, row, label, anchor="start", size=FONT - 1, fill=TEXT))
        return parts


def _marks(s: _Series, sx: Scale, sy: Scale, band: float, x_span: tuple[float, float]) -> list[str]:
    if s.kind == "bars":
        x, base, h = sx(s.xs[0]), s.bottoms[0], s.ys[0]
        top, low = sy(base + h), sy(base)
        out = [f'<rect x="{_n(x - band / 2)}" y="{_n(top)}" width="{_n(band)}" '
               f'height="{_n(low - top)}" fill="{s.color}"/>']  # fmt: skip
        if s.show_values:
            out.append(_text(x, top - 4, _label(base + h), fill=TEXT))
        return out
    if s.kind == "hline":
        y = sy(s.ys[0])
        return [f'<line x1="{_n(x_span[0])}" x2="{_n(x_span[1])}" y1="{_n(y)}" y2="{_n(y)}" '
                f'stroke="{s.color}"/>']  # fmt: skip
    if s.kind == "note":
        return [_text(sx(s.xs[0]), sy(s.ys[0]) - 6, s.text, size=FONT - 2, fill=s.color)]
    pts = [(sx(x), sy(y)) for x, y in zip(s.xs, s.ys, strict=True)]
    if s.kind == "points":
        return [f'<circle cx="{_n(x)}" cy="{_n(y)}" r="3.5" fill="{s.color}"/>' for x, y in pts]
    path: list[tuple[float, float]] = []
    for i, (x, y) in enumerate(pts):
        if s.kind == "step" and i:
            path.append((x, path[-1][1]))
        path.append((x, y))
    d = " ".join(f"{_n(x)},{_n(y)}" for x, y in path)
    out = [f'<polyline points="{d}" fill="none" stroke="{s.color}" stroke-width="2"/>']
    if s.marker:
        out += [f'<circle cx="{_n(x)}" cy="{_n(y)}" r="3" fill="{s.color}"/>' for x, y in pts]
    return out


@dataclass
class Chart:
    """Panels in a grid of ``rows`` x ``len(ratios)`` columns (widths in ``ratios``)."""

    width: float = 700
    height: float = 300
    rows: int = 1
    ratios: tuple[float, ...] = (1.0,)
    panels: list[Panel] = field(default_factory=list)

    def add(self, panel: Panel) -> Panel:
        self.panels.append(panel)
        return panel

    def svg(self, name: str) -> str:
        """The chart as an inline ``<svg>`` element (ids prefixed with ``name``)."""
        cols = len(self.ratios)
        total = sum(self.ratios)
        h = self.height / self.rows
        parts = []
        for i, p in enumerate(self.panels):
            row, col = divmod(i, cols)
            x0 = self.width * sum(self.ratios[:col]) / total
            w = self.width * self.ratios[col] / total
            parts.append(p.render(x0, row * h, w, h, f"{name}-{i}"))
        return (
            f'<svg viewBox="0 0 {_n(self.width)} {_n(self.height)}" width="{_n(self.width)}" '
            f'height="{_n(self.height)}" font-family="sans-serif" role="img">'
            f'<rect width="100%" height="100%" fill="#ffffff"/>{"".join(parts)}</svg>'
        )
