"""The audit report as one self-contained HTML page: inline CSS and SVG, no script, no
external asset. Every value taken from the report is escaped."""

from __future__ import annotations

from html import escape
from typing import Any

from service.audit.charts import draw_all

MAX_ROWS = 2000
CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;
max-width:72rem;padding:0 1rem;color:#222;background:#fff}
h1{margin-bottom:.2rem}h2{margin-top:2.2rem;border-bottom:1px solid #ddd}
.meta{color:#555}
.kpis{display:flex;flex-wrap:wrap;gap:.8rem}
.kpi{border:1px solid #ddd;border-radius:6px;padding:.5rem .9rem;min-width:9rem}
.kpi b{display:block;font-size:1.4rem}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(30rem,1fr));gap:1.2rem}
figure.chart{margin:0;border:1px solid #eee;border-radius:6px;padding:.5rem}
figure.chart svg{max-width:100%;height:auto;display:block}
figcaption{font-weight:600;margin-bottom:.3rem}
table{border-collapse:collapse;width:100%;font-size:.85rem}
th,td{border-bottom:1px solid #eee;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f6f6f6}td.n{text-align:right}code{font-size:.8rem}
.met{color:#1b7a1b}.missed{color:#c21d1d;font-weight:600}.open{color:#1f5fa4}
"""


def _e(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    for limit, unit, size in ((120, "s", 1), (7200, "min", 60), (172800, "h", 3600)):
        if seconds < limit:
            return f"{seconds / size:.3g} {unit}"
    return f"{seconds / 86400:.3g} d"


def _when(iso: str | None) -> str:
    return "–" if iso is None else _e(iso[:19].replace("T", " "))


def _table(headers: list[str], rows: list[list[str]], numeric: set[int] | None = None) -> str:
    """``rows`` hold HTML already escaped; ``numeric`` columns are right-aligned."""
    numeric = numeric or set()
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="n">{c}</td>' if i in numeric else f"<td>{c}</td>" for i, c in enumerate(r)
        )
        + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _kpis(report: dict[str, Any]) -> str:
    req = report["requests"]
    items = [("requests", req["total"])]
    items += [(state, n) for state, n in req["by_state"].items()]
    items += [(f"deadline {k}", n) for k, n in req["deadline"].items()]
    items += [
        ("median to effective", _duration(req["time_to_effective_s"]["median"])),
        ("median to completed", _duration(req["time_to_completed_s"]["median"])),
        ("p95 to completed", _duration(req["time_to_completed_s"]["p95"])),
    ]
    cells = "".join(f'<div class="kpi"><b>{_e(v)}</b>{_e(k)}</div>' for k, v in items)
    return f'<div class="kpis">{cells}</div>'


def _requests(report: dict[str, Any]) -> str:
    items = report["requests"]["items"]
    rows = [
        [
            f"<code>{_e(i['id'])}</code>",
            _when(i["received_at"]),
            _e(i["state"]),
            _e(i["outcome"] or ""),
            _e(i["n_records"]),
            _e(", ".join(str(m) for m in i["models"])),
            _e(_duration(i["time_to_effective_s"])),
            _e(_duration(i["time_to_completed_s"])),
            _when(i["due_at"]),
            f'<span class="{_e(i["deadline"])}">{_e(i["deadline"])}</span>',
            f"<code>{_e((i['subject_key'] or '')[:16])}</code>",
        ]
        for i in items[:MAX_ROWS]
    ]
    headers = ["request", "received (UTC)", "state", "outcome", "records", "models"]
    headers += ["to effective", "to completed", "due (UTC)", "deadline", "subject key (HMAC)"]
    note = ""
    if len(items) > MAX_ROWS:
        note = f"<p>The first {MAX_ROWS} of {len(items)} requests; the JSON form has all.</p>"
    if not items:
        return "<p>No deletion requests were received in this window.</p>"
    return note + _table(headers, rows, numeric={4, 6, 7})


def _evaluations(report: dict[str, Any]) -> str:
    """Every held-out evaluation with the number of records it scored, and a note per model
    whose held-out set changed size (its erased records are no longer scored), so a
    shrinking set is said rather than hidden under the accuracy plot."""
    rows, notes = [], []
    for entry in report["accuracy"]:
        points = entry["points"]
        rows += [
            [
                _e(entry["model"]),
                _e(p["routing_version"]),
                _e(p["dataset"]),
                _e(p["n_total"]),
                _e(p["n_correct"]),
                "–" if p["accuracy"] is None else _e(f"{p['accuracy']:.4f}"),
                _when(p["at"]),
            ]
            for p in points
        ]
        sizes = [p["n_total"] for p in points]
        if len(set(sizes)) > 1:
            notes.append(
                f"Model {entry['model']}: the held-out set went from {sizes[0]} to "
                f"{sizes[-1]} records scored (between {min(sizes)} and {max(sizes)}); "
                "held-out records erased since are no longer scored."
            )
    if not rows:
        return "<p>No held-out evaluations were recorded in this window.</p>"
    headers = ["model", "routing version", "held-out dataset", "records scored", "correct"]
    headers += ["accuracy", "at (UTC)"]
    return "".join(f"<p>{_e(n)}</p>" for n in notes) + _table(
        headers, rows[:MAX_ROWS], numeric={0, 1, 3, 4, 5}
    )


def _art30(report: dict[str, Any]) -> str:
    art = report["art30"]
    datasets = _table(
        ["dataset", "kind", "labels", "imported (UTC)", "active", "erased", "subjects"],
        [
            [
                _e(d["name"]),
                _e(d["kind"]),
                _e(", ".join(d["labels"])),
                _when(d["imported_at"]),
                _e(d["records_active"]),
                _e(d["records_erased"]),
                _e(d["subjects"]),
            ]
            for d in art["datasets"]
        ],
        numeric={4, 5, 6},
    )
    models = _table(
        ["model", "dataset", "status", "shards", "slices", "sequences/shard", "routing version"],
        [
            [_e(m[k]) for k in ("id", "dataset", "status", "n_shards", "n_slices", "budget")]
            + [_e(m["routing_version"])]
            for m in art["models"]
        ],
        numeric={0, 3, 4, 5, 6},
    )
    tomb = art["tombstones"]
    chain = art["audit_chain"]
    kept = ", ".join(f"<code>{_e(k)}</code>" for k in tomb["kept"])
    head = "–" if chain["head"] is None else f"<code>{_e(chain['head'])}</code>"
    return (
        "<h3>What data</h3>" + datasets + "<h3>Which models</h3>" + models
        + "<h3>Retention of tombstones</h3>"
        + f"<p>{_e(tomb['retention'])}</p>"
        + f"<p>Erased records now: {_e(tomb['n_erased'])}. Kept per erased record: {kept}. "
        + f"Removed: {_e(', '.join(tomb['removed']))}; destroyed: "
        + f"{_e(', '.join(tomb['destroyed']))}.</p>"
        + "<h3>How erasure reaches the disk</h3>"
        + f"<p>{_e(tomb['mechanism'])}</p>"
        + f"<p>Erasure deadline: {_e(art['erasure_deadline'])}.</p>"
        + "<h3>When a request is completed</h3>"
        + f"<p>{_e(art['completion'])}</p>"
        + f"<p>Audit chain: {_e(chain['events'])} events, head {head} "
        + "(check it with <code>unlearn audit verify</code>).</p>"
    )  # fmt: skip


def render_html(report: dict[str, Any]) -> str:
    """The whole page for a ``build_report`` result (or its JSON round trip)."""
    window = report["window"]
    span = f"{_when(window['from']) if window['from'] else 'the beginning'} to "
    span += _when(window["to"]) if window["to"] else "now"
    charts = "".join(
        f'<figure class="chart" id="chart-{name}"><figcaption>{_e(title)}</figcaption>'
        f"{svg}</figure>"
        for name, title, svg in draw_all(report)
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Unlearning audit report</title><style>{CSS}</style></head><body>"
        "<h1>Unlearning audit report</h1>"
        f'<p class="meta">Requests received from {span} (UTC). Generated '
        f"{_when(report['generated_at'])} UTC, report version {_e(report['report_version'])}."
        "</p>"
        f"<h2>Summary</h2>{_kpis(report)}"
        f'<h2>Charts</h2><div class="charts">{charts}</div>'
        f'<h2 id="held-out">Held-out evaluations</h2>{_evaluations(report)}'
        f'<h2 id="requests">Deletion requests</h2>{_requests(report)}'
        f'<h2 id="art30">Record of processing (Art. 30 summary)</h2>{_art30(report)}'
        "</body></html>\n"
    )
