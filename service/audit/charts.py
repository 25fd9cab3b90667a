"""The audit report's charts as inline SVG, drawn with matplotlib from the report's numbers.

Figures are built with ``matplotlib.figure.Figure`` and the SVG canvas (no pyplot, no global
backend switch), imported on first use. Output is deterministic for the same report: a fixed
``svg.hashsalt``, no date metadata. Every id is prefixed with the chart's name so several
charts can share one HTML page, and the XML prolog and metadata (which name external URLs)
are dropped.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from service.states import RequestState

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

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
_ID = re.compile(r'(\bid="|href="#|url\(#)([^"\)]+)')


def _at(text: str) -> dt.datetime:
    at = dt.datetime.fromisoformat(text)
    return at if at.tzinfo is not None else at.replace(tzinfo=dt.UTC)


def _figure(width: float = 7.0, height: float = 3.0) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _svg(fig: Figure, name: str) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None})
    text = buf.getvalue()
    text = text[text.index("<svg") :]
    text = re.sub(r"<metadata>.*?</metadata>\s*", "", text, flags=re.DOTALL)
    # Inline in HTML the namespaces are implied; dropping them leaves no URL on the page.
    text = text.replace(' xmlns:xlink="http://www.w3.org/1999/xlink"', "", 1)
    text = text.replace(' xmlns="http://www.w3.org/2000/svg"', "", 1)
    text = text.replace("xlink:href=", "href=")
    return _ID.sub(lambda m: f"{m.group(1)}{name}-{m.group(2)}", text)


def _empty(ax: Axes, message: str) -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", color="#555555", transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def requests_over_time(report: dict[str, Any]) -> str:
    """Stacked bars: requests received per day (week, month), by their state now."""
    over = report["requests"]["over_time"]
    fig = _figure()
    ax = fig.add_subplot()
    rows = over["buckets"]
    if not rows:
        _empty(ax, "no deletion requests in this window")
        return _svg(fig, "requests")
    labels = [r["start"] for r in rows]
    bottom = [0] * len(rows)
    for state, color in STATE_COLORS.items():
        heights = [r.get(state, 0) for r in rows]
        if any(heights):
            ax.bar(labels, heights, bottom=bottom, color=color, label=state)
            bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    ax.set_ylabel("requests")
    ax.set_xlabel(f"received ({over['bucket']}, UTC)")
    ax.tick_params(axis="x", labelrotation=45 if len(rows) > 8 else 0)
    ax.legend(loc="upper left", fontsize="small")
    return _svg(fig, "requests")


def latency(report: dict[str, Any]) -> str:
    """ECDF of seconds from receipt to effective and to completed, on a log axis."""
    fig = _figure()
    ax = fig.add_subplot()
    series = (
        (
            "to effective",
            report["requests"]["time_to_effective_s"],
            STATE_COLORS[RequestState.EFFECTIVE],
        ),
        (
            "to completed",
            report["requests"]["time_to_completed_s"],
            STATE_COLORS[RequestState.COMPLETED],
        ),
    )
    if not any(d["n"] for _, d, _ in series):
        _empty(ax, "no request became effective in this window")
        return _svg(fig, "latency")
    for label, dist, color in series:
        xs = [max(x, FLOOR_S) for x in dist["values"]]
        if xs:
            ys = [(i + 1) / len(xs) for i in range(len(xs))]
            ax.step(xs, ys, where="post", color=color, linewidth=2, label=f"{label} (n={len(xs)})")
            ax.plot(xs, ys, "o", color=color, markersize=3)
    ax.set_xscale("log")
    ax.set_ylim(0, 1.05)
    ax.set_xlabel(f"seconds after receipt (log scale; under {FLOOR_S * 1000:g} ms drawn at it)")
    ax.set_ylabel("share of requests")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    return _svg(fig, "latency")


def deadlines(report: dict[str, Any]) -> str:
    """Counts met / missed / open, and each request's slack against its due date."""
    fig = _figure(7.0, 3.2)
    left, right = fig.subplots(1, 2, width_ratios=(1, 2))
    counts = report["requests"]["deadline"]
    names = list(DEADLINE_COLORS)
    bars = left.bar(names, [counts[n] for n in names], color=list(DEADLINE_COLORS.values()))
    left.bar_label(bars)
    left.set_ylabel("requests")
    left.set_title("deadline (Art. 12(3))", fontsize="medium")
    items = report["requests"]["items"]
    if not items:
        _empty(right, "no deletion requests in this window")
        return _svg(fig, "deadlines")
    now = _at(report["generated_at"])
    for status, color in DEADLINE_COLORS.items():
        chosen = [i for i in items if i["deadline"] == status]
        if not chosen:
            continue
        due = [_at(i["due_at"]) for i in chosen]
        done = [_at(i["completed_at"]) if i["completed_at"] else now for i in chosen]
        slack = [(d - c).total_seconds() / 86400 for d, c in zip(due, done, strict=True)]
        right.scatter(due, slack, color=color, s=18, label=status)
    right.axhline(0, color="#333333", linewidth=1)
    right.set_xlabel("due date (UTC)")
    right.set_ylabel("days to spare")
    right.set_title("completed (or now, if open) vs due", fontsize="medium")
    right.legend(loc="best", fontsize="small")
    return _svg(fig, "deadlines")


def served_depth(report: dict[str, Any]) -> str:
    """Step lines of each shard's served depth over time, one panel per model."""
    models = report["served_depth"]
    fig = _figure(7.0, 1.0 + 2.2 * max(1, len(models)))
    if not models:
        _empty(fig.add_subplot(), "no routing publications with served depths recorded")
        return _svg(fig, "depth")
    window_end = report["window"]["to"]
    stop = _at(report["generated_at"])
    if window_end is not None:
        stop = min(stop, _at(window_end))
    axes = fig.subplots(len(models), 1, squeeze=False)[:, 0]
    for ax, entry in zip(axes, models, strict=True):
        points = entry["points"]
        times = [_at(p["at"]) for p in points]
        shards = sorted({s["shard"] for p in points for s in p["served"]})
        top = 1
        for shard in shards:
            depth = [
                next((s["depth"] for s in p["served"] if s["shard"] == shard), 0) for p in points
            ]
            xs, ys = [*times, max(stop, times[-1])], [*depth, depth[-1]]
            ax.step(xs, ys, where="post", linewidth=2, label=f"shard {shard}")
            top = max(top, *depth)
        ax.set_ylim(-0.2, top + 0.5)
        ax.set_yticks(range(top + 1))
        ax.set_ylabel("served depth")
        ax.set_title(f"model {entry['model']}", fontsize="medium")
        ax.legend(loc="lower left", fontsize="small", ncols=min(4, max(1, len(shards))))
    return _svg(fig, "depth")


def accuracy(report: dict[str, Any]) -> str:
    """Held-out accuracy of the served ensemble per routing version, one line per model;
    each point is labelled with the number of held-out records it scored (``n=``), which
    falls when held-out records are erased."""
    from matplotlib.ticker import MaxNLocator

    fig = _figure()
    ax = fig.add_subplot()
    models = [m for m in report["accuracy"] if any(p["accuracy"] is not None for p in m["points"])]
    if not models:
        _empty(ax, NO_EVALUATIONS)
        return _svg(fig, "accuracy")
    for entry in models:
        points = [p for p in entry["points"] if p["accuracy"] is not None]
        (line,) = ax.plot(
            [p["routing_version"] for p in points],
            [p["accuracy"] for p in points],
            marker="o",
            linewidth=2,
            label=f"model {entry['model']}",
        )
        for p in points:
            ax.annotate(
                f"n={p['n_total']}",
                (p["routing_version"], p["accuracy"]),
                textcoords="offset points",
                xytext=(0, 6),
                ha="center",
                fontsize="x-small",
                color=line.get_color(),
            )
    ax.set_ylim(0, 1.12)
    ax.set_xlabel("routing version (n = held-out records scored)")
    ax.set_ylabel("held-out accuracy")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower left", fontsize="small")
    return _svg(fig, "accuracy")


def class_accuracy(report: dict[str, Any]) -> str:
    """Held-out accuracy per label (its recall) per routing version, one panel per model: a
    label whose training records were all erased drops to zero here."""
    from matplotlib.ticker import MaxNLocator

    models = [m for m in report["accuracy"] if any(p.get("per_class") for p in m["points"])]
    fig = _figure(7.0, 1.0 + 2.2 * max(1, len(models)))
    if not models:
        _empty(fig.add_subplot(), NO_EVALUATIONS)
        return _svg(fig, "class-accuracy")
    axes = fig.subplots(len(models), 1, squeeze=False)[:, 0]
    for ax, entry in zip(axes, models, strict=True):
        labels = dict.fromkeys(c["label"] for p in entry["points"] for c in p.get("per_class", []))
        for label in labels:
            found = [
                (p["routing_version"], c["accuracy"])
                for p in entry["points"]
                for c in p.get("per_class", [])
                if c["label"] == label and c["accuracy"] is not None
            ]
            xs, ys = [x for x, _ in found], [y for _, y in found]
            ax.plot(xs, ys, marker="o", linewidth=2, label=str(label))
        ax.set_ylim(0, 1.05)
        ax.set_xlabel("routing version")
        ax.set_ylabel("accuracy per label")
        ax.set_title(f"model {entry['model']}", fontsize="medium")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
        ax.legend(loc="lower left", fontsize="small", ncols=min(4, max(1, len(labels))))
    return _svg(fig, "class-accuracy")


CHARTS: tuple[tuple[str, str, Callable[[dict[str, Any]], str]], ...] = (
    ("requests", "Deletion requests over time, by state", requests_over_time),
    ("latency", "Time to effective and to completed", latency),
    ("deadlines", "Deadline compliance", deadlines),
    ("depth", "Served depth per shard over time", served_depth),
    ("accuracy", "Held-out accuracy after each (re)training", accuracy),
    ("class-accuracy", "Held-out accuracy per label after each (re)training", class_accuracy),
)
# rcParams are process-wide: one report draws at a time, so concurrent API requests
# cannot see each other's settings.
_LOCK = threading.Lock()


def draw_all(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(name, title, inline SVG) of every chart, in page order."""
    import matplotlib

    with (
        _LOCK,
        matplotlib.rc_context(
            {
                "svg.hashsalt": "unlearn-report",
                "svg.fonttype": "none",
                "date.converter": "concise",
                "timezone": "UTC",
            }
        ),
    ):
        return [(name, title, draw(report)) for name, title, draw in CHARTS]
