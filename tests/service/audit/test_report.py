"""The audit report: numbers consistent with the database, no personal data, a self-contained
HTML page that headless Chromium renders with every plot drawn, the CLI and the endpoint."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from service.audit import log as audit
from service.audit.charts import NO_EVALUATIONS
from service.audit.report import build_report, render_html
from service.core import Service
from service.db.tables import DeletionRequestRow, RecordRow
from service.jobs.runner import LocalWorker
from service.lineage.deletion import DeletionInput
from tests.service.clients import api_client
from tests.service.conftest import SECRET, _settings, synthetic_dataset
from tests.service.lineage.test_flow import trained

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHARTS = ("requests", "latency", "deadlines", "depth", "accuracy", "class-accuracy")
SUBJECTS = ("subject-1", "subject-2", "subject-4")


@dataclass(frozen=True)
class Scenario:
    model_id: int
    late: str  # completed after its (moved) due date
    open: str  # effective, its retraining not run


def scenario(service: Service) -> Scenario:
    """Three deletions: one completed in time, one completed late (its due date moved into the
    past), one still effective; plus served-depth and held-out evaluation events."""
    model_id = trained(service)
    service.delete(DeletionInput(subject_id=SUBJECTS[0]))
    late, _, _ = service.delete(DeletionInput(subject_id=SUBJECTS[1], reason="Art. 17 letter"))
    LocalWorker(service.db, service.settings).drain()
    still_open, _, _ = service.delete(DeletionInput(subject_id=SUBJECTS[2]))
    t0 = dt.datetime.now(dt.UTC) - dt.timedelta(hours=3)
    with service.db.write() as s:
        query = select(DeletionRequestRow).where(DeletionRequestRow.public_id == late["id"])
        moved = s.scalars(query).one()
        moved.due_at = moved.received_at - dt.timedelta(days=1)
        for hours, version, depths, correct in ((0, 1, [3, 3], 50), (1, 2, [1, 3], 44)):
            served = [{"shard": i, "depth": d} for i, d in enumerate(depths)]
            at = t0 + dt.timedelta(hours=hours)
            data = {"model": model_id, "routing_version": version, "served": served}
            audit.append(s, "routing.published", data, at=at)
            evaluation = {"model": model_id, "routing_version": version, "dataset": "synthetic"}
            evaluation |= {"n_correct": correct, "n_total": 60}
            evaluation["per_class"] = [
                {"label": "neg", "n_correct": 30 if version == 2 else 28, "n_total": 30},
                {
                    "label": "pos",
                    "n_correct": correct - (30 if version == 2 else 28),
                    "n_total": 30,
                },
            ]
            audit.append(s, "model.evaluated", evaluation, at=at)
    return Scenario(model_id, late["id"], still_open["id"])


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Service, Scenario]]:
    """One scenario on SQLite for the tests that only read it (training takes a while)."""
    svc = Service.open(_settings(tmp_path_factory.mktemp("report")))
    svc.upgrade_schema()
    yield svc, scenario(svc)
    svc.db.dispose()


def assert_private(text: str) -> None:
    """No payload, record id or raw subject id of any record, nor a request's free text."""
    for r in synthetic_dataset().records:
        assert r.text not in text
        assert r.record_id not in text
        assert r.subject_id is None or r.subject_id not in text
    assert "Art. 17 letter" not in text


def test_report_numbers_match_the_database_and_hold_no_personal_data(service: Service) -> None:
    sc = scenario(service)
    with service.db.snapshot() as s:
        report = build_report(s, start=None, end=None)
        states = dict(
            s.execute(
                select(DeletionRequestRow.state, func.count()).group_by(DeletionRequestRow.state)
            ).all()
        )
        rows = s.scalars(select(DeletionRequestRow)).all()
        erased = s.scalar(select(func.count()).where(RecordRow.state == "erased"))
    req = report["requests"]
    assert req["total"] == len(rows) == 3
    assert {k: v for k, v in req["by_state"].items() if v} == states
    met = sum(1 for r in rows if r.completed_at is not None and r.completed_at <= r.due_at)
    assert req["deadline"] == {"met": met, "missed": 1, "open": 1} and met == 1
    by_id = {i["id"]: i for i in req["items"]}
    assert by_id[sc.late]["deadline"] == "missed" and by_id[sc.open]["deadline"] == "open"
    assert by_id[sc.open]["state"] == "effective" and by_id[sc.open]["models"] == [sc.model_id]
    assert req["time_to_effective_s"]["n"] == 3 and req["time_to_completed_s"]["n"] == 2
    assert all(i["subject_key"] and len(i["subject_key"]) == 64 for i in req["items"])
    assert sum(sum(b[st] for st in states) for b in req["over_time"]["buckets"]) == 3

    depth = next(m for m in report["served_depth"] if m["model"] == sc.model_id)["points"]
    assert [{"shard": 0, "depth": 1}, {"shard": 1, "depth": 3}] in [p["served"] for p in depth]
    evaluated = next(m for m in report["accuracy"] if m["model"] == sc.model_id)["points"]
    assert {(p["routing_version"], p["accuracy"]) for p in evaluated} >= {
        (1, 50 / 60),
        (2, 44 / 60),
    }
    per_class = {p["routing_version"]: p["per_class"] for p in evaluated}
    assert [c["accuracy"] for c in per_class[1]] == [28 / 30, 22 / 30]
    assert per_class[2] == [
        {"label": "neg", "n_correct": 30, "n_total": 30, "accuracy": 1.0},
        {"label": "pos", "n_correct": 14, "n_total": 30, "accuracy": 14 / 30},
    ]
    art = report["art30"]
    assert art["datasets"][0]["records_erased"] == erased == 9
    assert art["datasets"][0]["records_active"] == 72 - 9
    assert art["models"][0]["id"] == sc.model_id and art["tombstones"]["removed"] == ["payload"]

    # The JSON form round-trips and is what the page is drawn from.
    text = json.dumps(report)
    page = render_html(json.loads(text))
    assert page == render_html(report), "rendering is deterministic"
    for out in (text, page):
        assert_private(out)
    assert "http://" not in page and "https://" not in page
    refs = re.findall(r"""\b(?:src|href)\s*=\s*["']?([^"'\s>]*)""", page)
    refs += re.findall(r"url\(([^)]*)\)", page)  # the charts' clip paths
    assert refs and all(ref.startswith("#") for ref in refs), "only in-page references"
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids)), "ids are unique on the page"
    assert all(ref[1:] in ids for ref in refs), "every reference resolves on the page"
    assert "<script" not in page
    for name in CHARTS:
        assert f'id="chart-{name}"' in page
    assert NO_EVALUATIONS not in page


def test_window_filters_requests_and_an_empty_database_still_renders(service: Service) -> None:
    now = dt.datetime.now(dt.UTC)
    with service.db.snapshot() as s:
        empty = build_report(s, start=now - dt.timedelta(days=1), end=now)
    assert empty["requests"]["total"] == 0 and empty["accuracy"] == []
    page = render_html(empty)
    assert NO_EVALUATIONS in page and page.count("<svg") == len(CHARTS)
    with service.db.snapshot() as s, pytest.raises(ValueError):
        build_report(s, start=now, end=now)


def test_cli_writes_the_report(
    shared: tuple[Service, Scenario], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from service.cli.main import app

    service, _ = shared
    monkeypatch.setenv("UNLEARN_HOME", str(service.settings.home))
    monkeypatch.setenv("DATABASE_URL", service.settings.database_url)
    monkeypatch.setenv("UNLEARN_SECRET", SECRET)
    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)
    runner = CliRunner()
    html_file, json_file = tmp_path / "report.html", tmp_path / "report.json"
    result = runner.invoke(app, ["audit", "report", "--out", str(html_file)])
    assert result.exit_code == 0, result.output
    assert "3 request(s)" in result.output
    assert html_file.read_text().startswith("<!DOCTYPE html>")
    today = dt.datetime.now(dt.UTC).date()
    window = ["--from", today.isoformat(), "--to", (today + dt.timedelta(days=1)).isoformat()]
    args = ["audit", "report", *window, "--format", "json", "--out", str(json_file)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(json_file.read_text())
    assert data["requests"]["total"] == 3 and data["window"]["from"].startswith(str(today))
    assert_private(html_file.read_text() + json_file.read_text())
    bad = runner.invoke(app, ["audit", "report", "--from", "yesterday"])
    assert bad.exit_code == 2 and "--from" in bad.output


def test_endpoint_answers_json_and_html_and_problems(shared: tuple[Service, Scenario]) -> None:
    service, sc = shared
    with api_client(service) as client:
        r = client.get("/v1/audit/report")
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
        assert r.json()["requests"]["total"] == 3
        assert {i["id"] for i in r.json()["requests"]["items"]} >= {sc.late, sc.open}
        r = client.get("/v1/audit/report", params={"format": "html", "from": "2000-01-01"})
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert r.text.count("<svg") == len(CHARTS)
        assert_private(r.text)
        future = client.get("/v1/audit/report", params={"from": "2999-01-01T00:00:00+00:00"})
        assert future.json()["requests"]["total"] == 0
        for params in ({"from": "last week"}, {"from": "2025-02-01", "to": "2025-01-01"}):
            bad = client.get("/v1/audit/report", params=params)
            assert bad.status_code == 400, bad.text
            assert bad.headers["content-type"] == "application/problem+json"
            assert bad.json()["status"] == 400
        bad = client.get("/v1/audit/report", params={"format": "pdf"})
        assert bad.status_code == 422
        assert bad.headers["content-type"] == "application/problem+json"


def _need_chromium() -> None:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package")
    if missing:
        why = f"needs {', '.join(missing)} (apt-get install chromium chromium-driver)"
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)


def colored_pixels(png: bytes) -> int:
    """Pixels with a clear hue: plot marks, not the white, grey and black of axes and text."""
    import numpy as np
    from PIL import Image

    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int16)
    return int((rgb.max(axis=2) - rgb.min(axis=2) > 60).sum())


def test_html_renders_in_headless_chromium_with_every_plot_drawn(
    shared: tuple[Service, Scenario], tmp_path: Path
) -> None:
    _need_chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service as DriverService
    from selenium.webdriver.common.by import By

    service, _ = shared
    with service.db.snapshot() as s:
        page = tmp_path / "report.html"
        page.write_text(render_html(build_report(s, start=None, end=None)), encoding="utf-8")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    options.add_argument("--window-size=1400,1000")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=DriverService(str(CHROMEDRIVER)))
    try:
        driver.get(page.as_uri())
        assert driver.title == "Unlearning audit report"
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(1400, min(int(height) + 200, 12000))
        assert driver.save_screenshot(str(tmp_path / "report.png"))
        drawn = {}
        for name in CHARTS:
            chart = driver.find_element(By.CSS_SELECTOR, f"#chart-{name} svg")
            assert chart.size["width"] > 300 and chart.size["height"] > 150, name
            drawn[name] = colored_pixels(chart.screenshot_as_png)
        errors = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
    finally:
        driver.quit()
    assert not errors, errors
    assert all(n > 300 for n in drawn.values()), f"charts without plotted marks: {drawn}"
    assert colored_pixels((tmp_path / "report.png").read_bytes()) > sum(drawn.values()) // 2
