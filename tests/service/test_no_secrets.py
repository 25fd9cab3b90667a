"""No token, no token hash and no raw subject id anywhere the service writes or answers: logs
(DEBUG), audit events, the audit report (JSON and HTML), the operator CLI's output and
exports, and every API answer but the two that hand a token out once (``POST /v1/keys``'s
201 and ``POST /v1/deletions``'s 202). On SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from models.data import Dataset
from service.access import tokens
from service.access.principal import cli_principal
from service.api.app import create_app
from service.audit.report import render_html
from service.cli.main import app as cli_app
from service.core import Service
from service.db.tables import ApiKeyRow, DeletionRequestRow
from tests.service.api.conftest import drain, jsonl
from tests.service.approximate.conftest import image_dataset
from tests.service.clients import bearer
from tests.service.conftest import SECRET, synthetic_dataset

# Raw subject ids: the first two are in the data, the third is asked for and matches nothing.
ALICE, BOB, NOBODY = "alice@example.com", "bob@example.org", "dave.unknown@example.net"
RAW = (ALICE, BOB, NOBODY)
TOKEN_LIKE = re.compile(r"unl[ks]_[a-z2-7_]{20,}")
TINY_CNN = {"width": 2, "epochs": 1, "batch_size": 16, "lr": 0.003}


def _renamed(ds: Dataset, names: dict[str, str]) -> Dataset:
    records = tuple(
        dataclasses.replace(r, subject_id=names.get(r.subject_id or "", r.subject_id))
        for r in ds.records
    )
    return dataclasses.replace(ds, records=records)


SUBJECTS = {"subject-0": ALICE, "subject-1": BOB}


@dataclasses.dataclass
class Collected:
    """What the flow saw: the texts to search, and the tokens it was handed."""

    texts: dict[str, str] = dataclasses.field(default_factory=dict)
    tokens: list[str] = dataclasses.field(default_factory=list)

    def add(self, where: str, text: str) -> None:
        assert where not in self.texts, where
        self.texts[where] = text


class Recorder:
    """A test client that keeps every answer (status line, headers, body) it got, except
    the bodies that deliberately carry a new token, whose tokens it keeps instead."""

    def __init__(self, client: TestClient, seen: Collected) -> None:
        self.client, self.seen, self.n = client, seen, 0

    def __call__(self, method: str, url: str, token: str | None = None, **kw: Any) -> Any:
        headers = dict(kw.pop("headers", {}))
        if token is not None:
            headers |= bearer(token)
        r = self.client.request(method, url, headers=headers, **kw)
        self.n += 1
        where = f"api #{self.n}: {method} {url} -> {r.status_code}"
        gives_token = (method, url, r.status_code) in (
            ("POST", "/v1/keys", 201),
            ("POST", "/v1/deletions", 202),
        )
        if gives_token:
            token_field = r.json()["token"] if url == "/v1/keys" else r.json()["status_token"]
            assert isinstance(token_field, str) and TOKEN_LIKE.match(token_field)
            self.seen.tokens.append(token_field)
            self.seen.add(where, json.dumps(dict(r.headers)))
        else:
            self.seen.add(where, f"{json.dumps(dict(r.headers))}\n{r.text}")
        return r


def _cli(args: list[str], monkeypatch: pytest.MonkeyPatch) -> str:
    """One CLI command; the services it opened are closed after it (PostgreSQL connections
    left to the garbage collector would warn)."""
    opened: list[Service] = []
    original = Service.open.__func__  # type: ignore[attr-defined]

    def recording(cls: type[Service], *args: Any, **kwargs: Any) -> Service:
        svc: Service = original(cls, *args, **kwargs)
        opened.append(svc)
        return svc

    with monkeypatch.context() as m:
        m.setattr(Service, "open", classmethod(recording))
        result = CliRunner().invoke(cli_app, args)
    for svc in opened:
        svc.db.dispose()
    assert opened, "the command opened the service"
    assert result.exit_code == 0, result.output
    return result.output


def test_no_token_hash_or_raw_subject_id_leaves_the_service(
    service: Service,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    caplog.set_level(logging.DEBUG)
    seen = Collected()
    cli = service.acting_as(cli_principal())
    admin = cli.create_key("root", role="admin").token
    seen.tokens.append(admin)
    cli.import_dataset("digits", _renamed(image_dataset(40, 0, "digits", n_subjects=2), SUBJECTS))
    cli.import_dataset("held", image_dataset(20, 1, "held"))

    with TestClient(create_app(service, run_worker=False)) as client:
        call = Recorder(client, seen)
        r = call("POST", "/v1/keys", admin, json={"name": "portal", "role": "privacy-portal"})
        portal = r.json()["token"]
        r = call("POST", "/v1/keys", admin, json={"name": "dpo", "role": "auditor"})
        auditor = r.json()["token"]
        spare = call("POST", "/v1/keys", admin, json={"name": "spare", "role": "app"})
        spare_token, spare_id = spare.json()["token"], spare.json()["key"]["key_id"]
        data = jsonl(_renamed(synthetic_dataset(), SUBJECTS))
        assert ALICE.encode() in data, "the upload names the subject"
        files = {"file": ("reviews.jsonl", data, "application/x-ndjson")}
        r = call("POST", "/v1/datasets", admin, data={"name": "reviews"}, files=files)
        assert r.status_code == 201, r.text
        spec: dict[str, Any] = {"dataset": "digits", "family": "cnn-mnist"}
        spec |= {"eval_dataset": "held", "method": "FT", "family_params": TINY_CNN}
        r = call("POST", "/v1/models/approximate", admin, json=spec)
        assert r.status_code == 202, r.text
        model_id = r.json()["id"]
        drain(service)

        # Alice's deletion, replayed once (a new status token; the first stops working).
        once = {"Idempotency-Key": "ticket-7"}
        body = {"subject_id": ALICE, "reason": "Art. 17 request"}
        first = call("POST", "/v1/deletions", portal, json=body, headers=once)
        assert first.status_code == 202, first.text
        alice_id, alice_old = first.json()["id"], first.json()["status_token"]
        again = call("POST", "/v1/deletions", portal, json=body, headers=once)
        assert again.headers["idempotent-replayed"] == "true"
        alice_token = again.json()["status_token"]
        assert alice_token != alice_old
        drain(service)

        # Answers that must not echo what they were sent.
        for bad in (
            {"subject_id": NOBODY},
            {"subject_id": ALICE, "record_ids": ["rec-0001"]},
            {"subject": ALICE},
            {"subject_id": BOB, "dataset": "no-such-dataset"},
        ):
            r = call("POST", "/v1/deletions", portal, json=bad)
            assert r.status_code in (404, 422), r.text
        clash = {"subject_id": ALICE, "reason": "another body"}
        r = call("POST", "/v1/deletions", portal, json=clash, headers=once)
        assert r.status_code == 422 and "ticket-7" in r.json()["detail"]
        assert call("POST", "/v1/deletions", auditor, json=body).status_code == 403

        reads: list[tuple[str, str, str | None]] = [
            ("GET", "/v1/deletions", portal),
            ("GET", "/v1/deletions?state=completed", auditor),
            ("GET", f"/v1/deletions/{alice_id}", portal),
            ("GET", f"/v1/deletions/{alice_id}", alice_token),
            ("GET", f"/v1/deletions/{alice_id}/certificate", auditor),
            ("GET", f"/v1/deletions/{alice_id}/certificate", alice_token),
            ("GET", f"/v1/deletions/{alice_id}", alice_old),
            ("GET", f"/v1/deletions/{alice_id}", None),
            ("GET", "/v1/deletions", alice_token),
            ("GET", "/v1/keys", admin),
            ("GET", "/v1/keys?include_revoked=true", admin),
            ("GET", "/v1/keys", portal),
            ("DELETE", f"/v1/keys/{spare_id}", admin),
            ("GET", "/v1/keys", spare_token),
            ("GET", "/v1/datasets/reviews", admin),
            ("GET", f"/v1/models/{model_id}", auditor),
            ("GET", "/v1/audit/report", auditor),
            ("GET", "/v1/audit/report?format=html", auditor),
            ("GET", "/openapi.json", auditor),
            ("GET", "/readyz", None),
        ]
        statuses = [call(method, url, token).status_code for method, url, token in reads]
        assert statuses == [200] * 6 + [401, 401, 403, 200, 200, 403, 200, 401] + [200] * 6

    # The operator: a deletion by subject id, then the read-outs.
    monkeypatch.setenv("UNLEARN_HOME", str(service.settings.home))
    monkeypatch.setenv("DATABASE_URL", service.settings.database_url)
    monkeypatch.setenv("UNLEARN_SECRET", SECRET)
    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)
    deleted = _cli(["delete", "--subject", BOB, "--dataset", "reviews"], monkeypatch)
    bob_token = TOKEN_LIKE.findall(deleted)
    assert len(bob_token) == 1, deleted
    seen.tokens += bob_token
    seen.add("cli delete (its own token removed)", deleted.replace(bob_token[0], "<token>"))
    export = tmp_path / "chain.jsonl"
    with service.db.read() as s:
        ids = list(s.scalars(select(DeletionRequestRow.public_id)))
    assert len(ids) == 2
    commands = [
        ["keys", "list"],
        ["keys", "list", "--json", "--all"],
        ["requests", "list"],
        ["requests", "list", "--json"],
        *[["requests", "show", i] for i in ids],
        ["status"],
        ["status", "--json"],
        ["audit", "verify"],
        ["audit", "verify", "--json"],
        ["audit", "export", "--out", str(export)],
    ]
    for args in commands:
        seen.add("cli " + " ".join(args), _cli(args, monkeypatch))
    seen.add("audit export file", export.read_text())
    assert "audit chain OK" in seen.texts["cli audit verify"]

    events = service.audit_events()
    seen.add("audit events", json.dumps([list(e) for e in events], default=str))
    report = service.audit_report()
    seen.add("audit report json", json.dumps(report))
    seen.add("audit report html", render_html(report))
    seen.add("logs", _logs(caplog))

    # What must appear nowhere: every token handed out, every hash the database keeps, the
    # hashes of the status tokens a replay replaced, and the raw subject ids.
    with service.db.read() as s:
        hashes = list(s.scalars(select(ApiKeyRow.secret_sha256)))
        hashes += [
            h for h in s.scalars(select(DeletionRequestRow.status_token_sha256)) if h is not None
        ]
    assert len(seen.tokens) == 7 and len(set(seen.tokens)) == 7
    assert len(hashes) == 4 + 2
    forbidden = {t: "a token" for t in seen.tokens}
    forbidden |= {h: "a stored hash" for h in hashes}
    forbidden |= {tokens.digest(t): "a token's hash" for t in seen.tokens}
    forbidden |= {s: "a raw subject id" for s in RAW}
    assert tokens.digest(alice_old) not in hashes, "the replaced status token's hash is gone"

    leaks = [
        f"{what} in {where}"
        for where, text in seen.texts.items()
        for secret, what in forbidden.items()
        if secret in text
    ]
    assert not leaks, "\n".join(leaks)
    for where, text in seen.texts.items():
        assert not TOKEN_LIKE.search(text), f"something token-shaped in {where}"

    # The search looked where the things it looks for would be, had they leaked.
    assert len([w for w in seen.texts if w.startswith("api #")]) == call.n == 33
    assert alice_id in seen.texts["cli requests list --json"]
    assert spare_id in seen.texts["cli keys list --json --all"]
    assert "key.revoked" in seen.texts["audit export file"]
    assert any(r.name.startswith("httpx") for r in caplog.records), "the log was captured"


def _logs(caplog: pytest.LogCaptureFixture) -> str:
    """Every record the flow logged, at every level, as message, arguments and traceback."""
    parts = [caplog.text]
    for r in caplog.records:
        parts.append(f"{r.name} {r.levelname} {r.getMessage()} {r.args!r}")
        if r.exc_info is not None:
            parts.append(logging.Formatter().formatException(r.exc_info))
    return "\n".join(parts)
