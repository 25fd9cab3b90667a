"""Issue 13, item 6: ``unlearn verify --erasure`` passes on a clean store and names every
place where a copy of erased data was planted (files under ``UNLEARN_HOME``, an extra path,
a PostgreSQL page)."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text
from typer.testing import CliRunner

from service.cli.main import app
from service.core import Service
from service.db.tables import DestroyedKeyRow, RecordRow
from tests.service.api.conftest import drain
from tests.service.cli.conftest import cli_env  # noqa: F401 (a fixture)
from tests.service.conftest import SMALL
from tests.service.erasure.test_at_rest import (
    DATA,
    ERASED_IDS,
    TEXTS,
    _delete_and_complete,
    _erased_keys,
)


def _erase(svc: Service) -> dict[str, bytes]:
    svc.import_dataset("marked", DATA)
    svc.create_model("marked", SMALL)
    drain(svc)
    before = svc.verify_erasure()
    assert before.ok and before.erased_records == 0 and before.destroyed_keys == 0
    keys = _erased_keys(svc)
    _delete_and_complete(svc)
    return keys


def test_clean_store_passes_and_every_planted_copy_is_named(
    service: Service, tmp_path_factory: pytest.TempPathFactory
) -> None:
    svc = service
    keys = _erase(svc)
    clean = svc.verify_erasure()
    assert clean.ok, clean.remnants
    assert clean.erased_records == len(ERASED_IDS) and clean.destroyed_keys == 1
    assert clean.unprobed_records == 0 and clean.skipped == []
    assert clean.places > 5 and clean.bytes_scanned > 0
    with svc.db.read() as s:
        stored = s.scalars(select(RecordRow.probes).where(RecordRow.record_id.in_(ERASED_IDS)))
        assert all(p is not None and len(p["digests"]) >= 3 for p in stored)
        (destroyed,) = s.scalars(select(DestroyedKeyRow))
    assert destroyed.id in keys and destroyed.request_id is not None

    home = svc.settings.home
    (home / "logs").mkdir()
    victim = ERASED_IDS[0]
    (home / "logs" / "app.log").write_text(
        f"INFO importing {json.dumps({'text': TEXTS[victim]})}\n"
    )
    outside = tmp_path_factory.mktemp("exports")  # not under UNLEARN_HOME
    ((key_id, wrapped),) = keys.items()
    (outside / "dump.bin").write_bytes(secrets.token_bytes(33) + wrapped + secrets.token_bytes(7))

    found = svc.verify_erasure([outside])
    assert not found.ok
    assert any(
        r.startswith("logs/app.log: text of erased record marked/" + victim) for r in found.remnants
    ), found.remnants
    assert f"{outside / 'dump.bin'}: destroyed data key {key_id} (wrapped bytes)" in found.remnants
    assert len(found.remnants) == 2


def test_cli_exits_non_zero_and_names_the_file(cli_home: Service) -> None:
    svc = cli_home
    _erase(svc)
    runner = CliRunner()
    ok = runner.invoke(app, ["verify", "--erasure"])
    assert ok.exit_code == 0, ok.output
    assert "no remnant" in ok.output and f"{len(ERASED_IDS)} erased record(s)" in ok.output

    report = svc.settings.home / "reports" / "erasure-review.txt"
    report.parent.mkdir()
    report.write_text(TEXTS[ERASED_IDS[1]])
    bad = runner.invoke(app, ["verify", "--erasure", "--json"])
    assert bad.exit_code == 1
    body = json.loads(bad.output)
    assert body["ok"] is False and len(body["remnants"]) == 1
    assert body["remnants"][0].startswith("reports/erasure-review.txt: text of erased record")
    plain = runner.invoke(app, ["verify", "--erasure"])
    assert plain.exit_code == 1 and "remnant: reports/erasure-review.txt" in plain.output
    assert runner.invoke(app, ["verify", "--path", "x"]).exit_code == 2


@pytest.fixture
def cli_home(cli_env: Path) -> Service:  # noqa: F811
    from service.settings import Settings

    svc = Service.open(Settings.from_env())
    svc.upgrade_schema()
    return svc


@pytest.mark.postgres
def test_postgres_pages_are_scanned_and_a_dead_tuple_is_named(pg_service: Service) -> None:
    svc = pg_service
    _erase(svc)
    clean = svc.verify_erasure()
    assert clean.ok, clean.remnants
    assert clean.skipped == [] and clean.places > 20  # files, and every relation's pages
    # A dead row version holding an erased text (an UPDATE that is undone): its bytes stay
    # in the heap page.
    victim = TEXTS[ERASED_IDS[2]]
    engine = create_engine(svc.settings.database_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE datasets SET name = :t WHERE name = 'marked'"), {"t": victim})
        with engine.begin() as conn:
            conn.execute(text("UPDATE datasets SET name = 'marked' WHERE name = :t"), {"t": victim})
    finally:
        engine.dispose()
    found = svc.verify_erasure()
    places = {r.split(": ")[0] for r in found.remnants}
    # The heap page, and the unique index on the name (its entry for the dead version).
    assert "PostgreSQL datasets block 0" in places, found.remnants
    assert all(p.startswith("PostgreSQL ") for p in places)
    assert all(f"text of erased record marked/{ERASED_IDS[2]}" in r for r in found.remnants)
