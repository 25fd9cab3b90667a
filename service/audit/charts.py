"""The audit report's charts as inline SVG, drawn from the report's numbers with the small
writer in :mod:`service.audit.svg` (no plotting library: the report is a model-free command).
Output is deterministic for the same report, every id carries the chart's name so several
charts share one HTML page, and nothing on them names an external URL.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from service.audit.svg import Chart, Panel
from service.states import RequestState

STATE_COLORS = {
    RequestState.RECEIVED: "#9e9e9e",
    RequestState.EFFECTIVE: "#e6a100",
    RequestState.RETRAINING: "#1f77b4",
    RequestState.UNLEARNING: "#9467bd",
    RequestState.NEEDS_REVIEW: "#e377c2",
    RequestState.COMPLETED: "#2ca02c",
    RequestState.FAILED: "#d62728",
}
DEADLINE_COLORS = {"met": "#2ca02c", "missed": "#d62728", "open": "#1f77b4"}
NO_EVALUATIONS = "no held-out evaluations recorded"
FLOOR_S = 0.01  # a request is effective in the transaction that accepts it: 0 s on a log axis


def _at(text: str) -> dt.datetime:
    at = dt.datetime.fromisoformat(text)
    return at if at.tzinfo is not None else at.replace(tzinfo=dt.UTC)


def _ts(text: str) -> float:
    return _at(text).timestamp()


def requests_over_time(report: dict[str, Any]) -> str:
    """Stacked bars: requests received per day (week, month), by their state now."""
    over = report["requests"]["over_time"]
    chart = Chart()
    rows = over["buckets"]
    ax = chart.add(
        Panel(x="band", xlabel=f"received ({over['bucket']}, UTC)", ylabel="requests", grid=True)
    )
    if not rows:
        ax.message = "no deletion requests in this window"
        return chart.svg("requests")
    labels = [str(r["start"]) for r in rows]
    bottom = [0.0] * len(rows)
    for state, color in STATE_COLORS.items():
        heights = [float(r.get(state, 0)) for r in rows]
        if any(heights):
            ax.bars(labels, heights, bottoms=bottom, color=color, label=state)
            bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    return chart.svg("requests")


def latency(report: dict[str, Any]) -> str:
    """ECDF of seconds from receipt to effective and to completed, on a log axis."""
    chart = Chart()
    ax = chart.add(
        Panel(
            x="log",
            xlabel=f"seconds after receipt (log scale; under {FLOOR_S * 1000:g} ms drawn at it)",
            ylabel="share of requests",
            legend="lower right",
            ylim=(0.0, 1.05),
            yticks=[0.0, 0.25, 0.5, 0.75, 1.0],
            grid=True,
        )
    )
    series = (
        ("to effective", report["requests"]["time_to_effective_s"], RequestState.EFFECTIVE),
        ("to completed", report["requests"]["time_to_completed_s"], RequestState.COMPLETED),
    )
    if not any(d["n"] for _, d, _ in series):
        ax.message = "no request became effective in this window"
        return chart.svg("latency")
    for label, dist, state in series:
        xs = sorted(max(x, FLOOR_S) for x in dist["values"])
        if xs:
            ys = [(i + 1) / len(xs) for i in range(len(xs))]
            ax.line(xs, ys, color=STATE_COLORS[state], label=f"{label} (n={len(xs)})", step=True)
    return chart.svg("latency")


def deadlines(report: dict[str, Any]) -> str:
    """Counts met / missed / open, and each request's slack against its due date."""
    chart = Chart(height=320, ratios=(1.0, 2.0))
    left = chart.add(Panel(x="band", title="deadline (Art. 12(3))", ylabel="requests", legend=None))
    counts = report["requests"]["deadline"]
    names = list(DEADLINE_COLORS)
    left.bars(
        names,
        [float(counts[n]) for n in names],
        color=list(DEADLINE_COLORS.values()),
        show_values=True,
    )
    right = chart.add(
        Panel(
            x="time",
            title="completed (or now, if open) vs due",
            xlabel="due date (UTC)",
            ylabel="days to spare",
            legend="lower right",
            grid=True,
        )
    )
    items = report["requests"]["items"]
    if not items:
        right.message = "no deletion requests in this window"
        return chart.svg("deadlines")
    now = _at(report["generated_at"])
    for status, color in DEADLINE_COLORS.items():
        chosen = [i for i in items if i["deadline"] == status]
        if not chosen:
            continue
        due = [_at(i["due_at"]) for i in chosen]
        done = [_at(i["completed_at"]) if i["completed_at"] else now for i in chosen]
        slack = [(d - c).total_seconds() / 86400 for d, c in zip(due, done, strict=True)]
        right.points([d.timestamp() for d in due], slack, color=color, label=status)
    right.hline(0.0)
    return chart.svg("deadlines")


def served_depth(report: dict[str, Any]) -> str:
    """Step lines of each shard's served depth over time, one panel per model."""
    models = report["served_depth"]
    chart = Chart(height=40 + 220 * max(1, len(models)), rows=max(1, len(models)))
    if not models:
        chart.add(Panel(message="no routing publications with served depths recorded"))
        return chart.svg("depth")
    window_end = report["window"]["to"]
    stop = _at(report["generated_at"])
    if window_end is not None:
        stop = min(stop, _at(window_end))
    for entry in models:
        points = entry["points"]
        times = [_ts(p["at"]) for p in points]
        shards = sorted({s["shard"] for p in points for s in p["served"]})
        top = 1
        ax = chart.add(
            Panel(
                x="time",
                title=f"model {entry['model']}",
                ylabel="served depth",
                legend="lower left",
            )
        )
        for shard in shards:
            depth = [
                next((s["depth"] for s in p["served"] if s["shard"] == shard), 0) for p in points
            ]
            xs, ys = [*times, max(stop.timestamp(), times[-1])], [*depth, depth[-1]]
            ax.line(xs, [float(y) for y in ys], label=f"shard {shard}", step=True, marker=False)
            top = max(top, *depth)
        ax.ylim = (-0.2, top + 0.5)
        ax.yticks = [float(t) for t in range(top + 1)]
    return chart.svg("depth")


def accuracy(report: dict[str, Any]) -> str:
    """Held-out accuracy of the served ensemble per routing version, one line per model;
    each point is labelled with the number of held-out records it scored (``n=``), which
    falls when held-out records are erased."""
    chart = Chart()
    ax = chart.add(
        Panel(
            xlabel="routing version (n = held-out records scored)",
            ylabel="held-out accuracy",
            legend="lower left",
            ylim=(0.0, 1.12),
            yticks=[0.0, 0.2, 0.4, 0.6, 0.8, 1.0],
            integer_x=True,
            grid=True,
        )
    )
    models = [m for m in report["accuracy"] if any(p["accuracy"] is not None for p in m["points"])]
    if not models:
        ax.message = NO_EVALUATIONS
        return chart.svg("accuracy")
    for entry in models:
        points = [p for p in entry["points"] if p["accuracy"] is not None]
        color = ax.line(
            [float(p["routing_version"]) for p in points],
            [p["accuracy"] for p in points],
            label=f"model {entry['model']}",
        )
        for p in points:
            ax.note(p["routing_version"], p["accuracy"], f"n={p['n_total']}", color=color)
    return chart.svg("accuracy")


def class_accuracy(report: dict[str, Any]) -> str:
    """Held-out accuracy per label (its recall) per routing version, one panel per model: a
    label whose training records were all erased drops to zero here."""
    models = [m for m in report["accuracy"] if any(p.get("per_class") for p in m["points"])]
    chart = Chart(height=40 + 220 * max(1, len(models)), rows=max(1, len(models)))
    if not models:
        chart.add(Panel(message=NO_EVALUATIONS))
        return chart.svg("class-accuracy")
    for entry in models:
        ax = chart.add(
            Panel(
                title=f"model {entry['model']}",
                xlabel="routing version",
                ylabel="accuracy per label",
                legend="lower left",
                ylim=(0.0, 1.05),
                yticks=[0.0, 0.25, 0.5, 0.75, 1.0],
                integer_x=True,
                grid=True,
            )
        )
        labels = dict.fromkeys(c["label"] for p in entry["points"] for c in p.get("per_class", []))
        for label in labels:
            found = [
                (float(p["routing_version"]), float(c["accuracy"]))
                for p in entry["points"]
                for c in p.get("per_class", [])
                if c["label"] == label and c["accuracy"] is not None
            ]
            ax.line([x for x, _ in found], [y for _, y in found], label=str(label))
    return chart.svg("class-accuracy")


CHARTS: tuple[tuple[str, str, Callable[[dict[str, Any]], str]], ...] = (
    ("requests", "Deletion requests over time, by state", requests_over_time),
    ("latency", "Time to effective and to completed", latency),
    ("deadlines", "Deadline compliance", deadlines),
    ("depth", "Served depth per shard over time", served_depth),
    ("accuracy", "Held-out accuracy after each (re)training", accuracy),
    ("class-accuracy", "Held-out accuracy per label after each (re)training", class_accuracy),
)


def draw_all(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(name, title, inline SVG) of every chart, in page order."""
    return [(name, title, draw(report)) for name, title, draw in CHARTS]
