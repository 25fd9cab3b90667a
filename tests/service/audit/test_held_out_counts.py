"""The report says how many held-out records each accuracy point scored, and when the
held-out set shrank (its records erased) between points."""

from __future__ import annotations

import re
from typing import Any

from service.audit import log as audit
from service.audit.charts import accuracy
from service.audit.report import build_report, render_html
from service.core import Service

POINTS = ((1, 400, 352), (2, 380, 330), (3, 356, 300))  # routing version, scored, correct


def _report(service: Service) -> dict[str, Any]:
    with service.db.write() as s:
        for version, total, correct in POINTS:
            data = {"model": 7, "routing_version": version, "dataset": "news-held-out"}
            audit.append(s, "model.evaluated", data | {"n_correct": correct, "n_total": total})
        audit.append(
            s,
            "model.evaluated",
            {"model": 8, "routing_version": 1, "dataset": "d", "n_correct": 5, "n_total": 10},
        )
    with service.db.snapshot() as s:
        return build_report(s, start=None, end=None)


def test_each_point_carries_and_shows_its_held_out_count(service: Service) -> None:
    report = _report(service)
    points = next(m for m in report["accuracy"] if m["model"] == 7)["points"]
    assert [(p["routing_version"], p["n_total"]) for p in points] == [(v, n) for v, n, _ in POINTS]
    labels = re.findall(r"n=\d+", accuracy(report))
    assert sorted(labels) == sorted(f"n={n}" for n in (400, 380, 356, 10)), labels
    page = render_html(report)
    section = page[page.index('id="held-out"') :]
    for version, total, correct in POINTS:
        row = (
            f'<td class="n">7</td><td class="n">{version}</td><td>news-held-out</td>'
            f'<td class="n">{total}</td><td class="n">{correct}</td>'
            f'<td class="n">{correct / total:.4f}</td>'
        )
        assert row in section
    assert "Model 7: the held-out set went from 400 to 356 records scored" in section
    assert "Model 8:" not in section, "an unchanged held-out set needs no note"


def test_no_evaluation_says_so(service: Service) -> None:
    with service.db.snapshot() as s:
        page = render_html(build_report(s, start=None, end=None))
    assert "No held-out evaluations were recorded" in page
