"""The report's SVG writer: round ticks, scales that place marks where the data says, and
output that is deterministic and safe to inline several times on one page."""

from __future__ import annotations

import datetime as dt
import itertools
import re
import xml.etree.ElementTree as ET

from service.audit.svg import Chart, Panel, nice_ticks, time_ticks


def test_ticks_are_round_and_cover_the_range() -> None:
    assert nice_ticks(0, 1) == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert nice_ticks(0, 13) == [0.0, 5.0, 10.0]
    assert nice_ticks(2, 18, integer=True) == [5.0, 10.0, 15.0]
    assert nice_ticks(1, 3, integer=True) == [1.0, 2.0, 3.0]  # never a fractional step
    assert nice_ticks(5, 5) == [5.0, 5.2, 5.4, 5.6, 5.8, 6.0]  # an empty range gets ticks
    start = dt.datetime(2026, 12, 3, 14, 2, tzinfo=dt.UTC).timestamp()
    ticks = time_ticks(start, start + 3 * 3600)
    assert [label for _, label in ticks] == ["12-03 15:00", "12-03 16:00", "12-03 17:00"]
    days = time_ticks(start, start + 20 * 86400)
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d", s) for _, s in days)
    assert {b - a for (a, _), (b, _) in itertools.pairwise(days)} == {7 * 86400.0}
    assert start <= days[0][0] and days[-1][0] <= start + 20 * 86400


def _points(svg: str) -> list[tuple[float, float]]:
    return [
        (float(x), float(y)) for x, y in re.findall(r'<circle cx="([\d.]+)" cy="([\d.]+)"', svg)
    ]


def test_marks_land_where_the_data_says() -> None:
    chart = Chart(width=400, height=200)
    ax = chart.add(Panel(ylim=(0.0, 1.0)))
    ax.line([1.0, 2.0, 3.0], [0.0, 0.5, 1.0], label="a")
    xs, ys = zip(*_points(chart.svg("t")), strict=True)
    assert xs[0] < xs[1] < xs[2] and abs((xs[1] - xs[0]) - (xs[2] - xs[1])) < 0.2
    assert ys[0] > ys[1] > ys[2], "larger values are drawn higher"
    assert abs((ys[0] - ys[1]) - (ys[1] - ys[2])) < 0.2

    log = Chart()
    lx = log.add(Panel(x="log"))
    lx.points([0.01, 0.1, 1.0], [0.2, 0.4, 0.6], color="#000000")
    px = [x for x, _ in _points(log.svg("l"))]
    assert abs((px[1] - px[0]) - (px[2] - px[1])) < 0.2, "a decade is the same width"
    assert {"0.01", "0.1", "1"} <= set(re.findall(r">([\d.]+)</text>", log.svg("l")))


def test_output_is_deterministic_well_formed_and_prefixed() -> None:
    def draw() -> str:
        chart = Chart(rows=2)
        top = chart.add(Panel(x="band", title="a & b"))
        top.bars(["x", "y"], [1.0, 2.0], color="#ff0000", label="<red>", show_values=True)
        chart.add(Panel(message="nothing here"))
        return chart.svg("depth")

    svg = draw()
    assert svg == draw()
    ET.fromstring(svg)  # escaped text, balanced tags
    assert "&lt;red&gt;" in svg and "a &amp; b" in svg and "nothing here" in svg
    ids = re.findall(r'\bid="([^"]+)"', svg)
    assert ids and all(i.startswith("depth-") for i in ids)
    assert "http" not in svg and "<script" not in svg
