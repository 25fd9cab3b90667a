"""Who did it: every audit event names its actor (an API key by id and name, the CLI with the
OS user, the background jobs as the system) and never a token or its hash; a deletion
request and its signed certificate name the key that filed it; an Idempotency-Key is scoped
to the principal that sent it. On SQLite and PostgreSQL."""

from __future__ import annotations

import getpass
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from service.access import tokens
from service.access.principal import SYSTEM, PrincipalType, cli_principal
from service.api.app import create_app
from service.audit.certificates import check_certificate
from service.audit.verify import verify_chain
from service.core import Service
from service.db.tables import ApiKeyRow, DeletionRequestRow
from service.lineage.deletion import DeletionInput, scoped_key
from tests.service.api.conftest import drain, jsonl
from tests.service.approximate.conftest import image_dataset
from tests.service.clients import bearer
from tests.service.conftest import synthetic_dataset

USER = getpass.getuser()
CLI = {"type": "cli", "id": USER, "name": f"unlearn CLI ({USER})"}
TINY_CNN = {"width": 2, "epochs": 1, "batch_size": 16, "lr": 0.003}
Event = tuple[int, str, str, dict[str, Any], str, str]


def key_actor(token: str, name: str) -> dict[str, str]:
    return {"type": "key", "id": token.split("_")[1], "name": name}


@dataclass
class World:
    """A deployment after one of everything: keys made by the CLI and over the API, datasets
    imported by the CLI and over the API, an approximate model registered over the API and
    trained by the worker, deletions filed by a key (one finished by the worker, one at once)
    and by the CLI, a key revoked over the API and one by the CLI."""

    svc: Service
    client: TestClient
    keys: dict[str, str]  # key name -> token
    status_tokens: list[str] = field(default_factory=list)
    worker_done: str = ""  # filed by portal-a, completed by the worker
    done_at_once: str = ""  # filed by portal-a, completed in its own call
    by_cli: str = ""

    def actor(self, name: str) -> dict[str, str]:
        return key_actor(self.keys[name], name)

    def events(self) -> list[Event]:
        return list(self.svc.audit_events())


def _accepted(r: Any) -> dict[str, Any]:
    assert r.status_code == 202, r.text
    body: dict[str, Any] = r.json()
    return body


@pytest.fixture
def world(service: Service) -> Iterator[World]:
    cli = service.acting_as(cli_principal())
    admin = cli.create_key("root", role="admin").token
    cli.import_dataset("digits", image_dataset(40, 0, "digits", n_subjects=2))
    cli.import_dataset("held", image_dataset(20, 1, "held"))
    with TestClient(create_app(service, run_worker=False)) as client:
        w = World(service, client, {"root": admin})
        for name, role in (
            ("importer", "operator"),
            ("portal-a", "privacy-portal"),
            ("portal-b", "privacy-portal"),
        ):
            r = client.post("/v1/keys", headers=bearer(admin), json={"name": name, "role": role})
            assert r.status_code == 201, r.text
            w.keys[name] = r.json()["token"]
        importer = bearer(w.keys["importer"])
        files = {"file": ("s.jsonl", jsonl(synthetic_dataset()), "application/x-ndjson")}
        r = client.post("/v1/datasets", headers=importer, data={"name": "synthetic"}, files=files)
        assert r.status_code == 201, r.text
        spec = {
            "dataset": "digits",
            "family": "cnn-mnist",
            "eval_dataset": "held",
            "method": "FT",
            "family_params": TINY_CNN,
        }
        r = client.post("/v1/models/approximate", headers=importer, json=spec)
        assert r.status_code == 202, r.text
        drain(service)
        assert service.model_status(r.json()["id"]).status == "ready"

        portal = bearer(w.keys["portal-a"])
        body = {"subject_id": "subject-0", "dataset": "digits"}
        first = _accepted(client.post("/v1/deletions", headers=portal, json=body))
        assert first["state"] == "unlearning"
        drain(service)
        body = {"subject_id": "subject-1", "dataset": "synthetic"}
        second = _accepted(client.post("/v1/deletions", headers=portal, json=body))
        assert second["state"] == "completed"
        w.worker_done, w.done_at_once = first["id"], second["id"]
        w.status_tokens += [first["status_token"], second["status_token"]]
        by_cli = cli.accept(DeletionInput(subject_id="subject-2", dataset="synthetic"))
        assert by_cli.status_token is not None
        w.by_cli = by_cli.request.id
        w.status_tokens.append(by_cli.status_token)

        r = client.delete(f"/v1/keys/{w.keys['portal-b'].split('_')[1]}", headers=bearer(admin))
        assert r.status_code == 200, r.text
        cli.revoke_key(w.keys["importer"].split("_")[1])
        yield w


def _secrets(w: World) -> list[str]:
    with w.svc.db.read() as s:
        hashes = list(s.scalars(select(ApiKeyRow.secret_sha256)))
        hashes += [
            h for h in s.scalars(select(DeletionRequestRow.status_token_sha256)) if h is not None
        ]
    every = [*w.keys.values(), *w.status_tokens]
    return every + hashes + [tokens.digest(t) for t in every]


def _of(events: list[Event], kind: str, **data: Any) -> list[Event]:
    return [e for e in events if e[2] == kind and all(e[3].get(k) == v for k, v in data.items())]


def _one(events: list[Event], kind: str, **data: Any) -> Event:
    found = _of(events, kind, **data)
    assert len(found) == 1, (kind, data, [e[2:4] for e in events])
    return found[0]


def test_every_event_names_an_actor_and_no_secret(world: World) -> None:
    events = world.events()
    assert len(events) > 30
    types = {str(t) for t in PrincipalType}
    for seq, _, kind, data, _, _ in events:
        actor = data.get("actor")
        assert isinstance(actor, dict), (seq, kind)
        assert set(actor) == {"type", "id", "name"}, (seq, kind, actor)
        assert all(isinstance(v, str) and v for v in actor.values()), (seq, kind, actor)
        assert actor["type"] in types - {"status_token"}, (seq, kind, actor)
    text = json.dumps([e[3] for e in events])
    secrets = _secrets(world)
    assert len(secrets) == 3 * (len(world.keys) + len(world.status_tokens))
    for secret in secrets:
        assert secret not in text
    assert "unlk_" not in text and "unls_" not in text
    seen = {(e[3]["actor"]["type"], e[3]["actor"]["id"]) for e in events}
    key_ids = {world.actor(n)["id"] for n in ("root", "importer", "portal-a")}
    assert seen >= {("cli", USER), ("system", SYSTEM.id)} | {("key", k) for k in key_ids}


def test_api_events_name_the_key(world: World) -> None:
    events = world.events()
    importer, portal = world.actor("importer"), world.actor("portal-a")
    assert _one(events, "dataset.imported", dataset="synthetic")[3]["actor"] == importer
    assert _one(events, "model.registered", dataset="digits")[3]["actor"] == importer
    for request in (world.worker_done, world.done_at_once):
        for kind in ("request.received", "records.erased", "request.effective"):
            assert _one(events, kind, request=request)[3]["actor"] == portal, (kind, request)
    assert _one(events, "request.unlearning", request=world.worker_done)[3]["actor"] == portal
    # The request the key's own call completed is signed off by that key.
    for kind in ("request.completed", "certificate.issued"):
        assert _one(events, kind, request=world.done_at_once)[3]["actor"] == portal
    revoked = _one(events, "key.revoked", name="portal-b")[3]
    assert revoked["actor"] == world.actor("root")
    for name in ("importer", "portal-a", "portal-b"):
        assert _one(events, "key.created", name=name)[3]["actor"] == world.actor("root")


def test_cli_events_name_the_os_user(world: World) -> None:
    events = world.events()
    for name in ("digits", "held"):
        assert _one(events, "dataset.imported", dataset=name)[3]["actor"] == CLI
    assert _one(events, "key.created", name="root")[3]["actor"] == CLI
    assert _one(events, "key.revoked", name="importer")[3]["actor"] == CLI
    for kind in ("request.received", "records.erased", "request.effective", "request.completed"):
        assert _one(events, kind, request=world.by_cli)[3]["actor"] == CLI, kind


def test_background_jobs_name_the_system(world: World) -> None:
    events = world.events()
    jobs = [e for e in events if e[2].startswith("job.")]
    assert {e[2] for e in jobs} >= {"job.started", "job.finished"} and len(jobs) >= 4
    assert all(e[3]["actor"] == SYSTEM.actor() for e in jobs)
    assert SYSTEM.actor() == {"type": "system", "id": "worker", "name": "background jobs"}
    for kind in ("model.trained", "model.version.published"):
        found = _of(events, kind)
        assert found and all(e[3]["actor"] == SYSTEM.actor() for e in found), kind
    # The deletion the worker finished: completed and certified by the system, not the key.
    for kind in ("request.completed", "certificate.issued"):
        assert _one(events, kind, request=world.worker_done)[3]["actor"] == SYSTEM.actor()


def test_key_events_name_the_key_never_its_token(world: World) -> None:
    events = world.events()
    created = _of(events, "key.created")
    assert [e[3]["name"] for e in created] == ["root", "importer", "portal-a", "portal-b"]
    for _, _, _, data, _, _ in created:
        token = world.keys[data["name"]]
        assert set(data) == {"key_id", "name", "role", "scopes", "expires_at", "actor"}
        assert data["key_id"] == token.split("_")[1]
        assert token not in json.dumps(data) and tokens.digest(token) not in json.dumps(data)
    assert _one(events, "key.created", name="portal-a")[3]["scopes"] == [
        "deletions:create",
        "deletions:read",
    ]
    revoked = _of(events, "key.revoked")
    assert [e[3]["name"] for e in revoked] == ["portal-b", "importer"]
    for _, _, _, data, _, _ in revoked:
        assert set(data) == {"key_id", "name", "actor"}
        assert data["key_id"] == world.keys[data["name"]].split("_")[1]


def test_requests_and_certificates_name_who_filed_them(world: World) -> None:
    client, portal = world.client, world.actor("portal-a")
    reader = bearer(world.keys["portal-a"])
    for request, who in (
        (world.worker_done, portal),
        (world.done_at_once, portal),
        (world.by_cli, CLI),
    ):
        r = client.get(f"/v1/deletions/{request}", headers=reader)
        assert r.status_code == 200, r.text
        assert r.json()["state"] == "completed" and r.json()["requested_by"] == who
        cert = client.get(f"/v1/deletions/{request}/certificate", headers=reader)
        assert cert.status_code == 200, cert.text
        check = check_certificate(cert.content, world.svc.keyring())
        assert check.ok and check.body is not None, check.problem
        assert check.body["requested_by"] == who and check.body["request"] == request
    page = client.get("/v1/deletions", headers=reader).json()["items"]
    assert {i["id"]: i["requested_by"]["type"] for i in page} == {
        world.worker_done: "key",
        world.done_at_once: "key",
        world.by_cli: "cli",
    }
    # The subject's status token reads the same answer.
    r = client.get(f"/v1/deletions/{world.done_at_once}", headers=bearer(world.status_tokens[1]))
    assert r.status_code == 200 and r.json()["requested_by"] == portal


def test_the_chain_still_verifies(world: World) -> None:
    events = world.events()
    report = verify_chain(events, world.svc.keyring())
    assert report.ok, report.problem
    assert report.n_events == len(events) and report.n_signatures >= 1
    assert report.key_ids == (world.svc.signer.key_id,)
    # The actor is covered by the hash: rewriting one breaks the chain.
    seq, at, kind, data, prev, digest = events[3]
    forged = (seq, at, kind, {**data, "actor": SYSTEM.actor() | {"id": "x"}}, prev, digest)
    broken = verify_chain([*events[:3], forged, *events[4:]], world.svc.keyring())
    assert not broken.ok and broken.broken_at == seq


def test_idempotency_key_is_scoped_per_principal(service: Service) -> None:
    cli = service.acting_as(cli_principal())
    service.import_dataset("synthetic", synthetic_dataset())
    a = cli.create_key("portal-a", role="privacy-portal").token
    b = cli.create_key("portal-b", role="privacy-portal").token
    body = {"subject_id": "subject-1"}
    same = {"Idempotency-Key": "order-42"}
    with TestClient(create_app(service, run_worker=False)) as client:
        ra = client.post("/v1/deletions", json=body, headers=bearer(a) | same)
        rb = client.post("/v1/deletions", json=body, headers=bearer(b) | same)
        first, other = _accepted(ra), _accepted(rb)
        assert "idempotent-replayed" not in ra.headers and "idempotent-replayed" not in rb.headers
        assert first["id"] != other["id"], "another key's Idempotency-Key is not a replay"
        assert first["requested_by"] == key_actor(a, "portal-a")
        assert other["requested_by"] == key_actor(b, "portal-b")
        assert other["outcome"] == "already_erased"

        again = client.post("/v1/deletions", json=body, headers=bearer(a) | same)
        replay = _accepted(again)
        assert again.headers["idempotent-replayed"] == "true"
        assert replay["id"] == first["id"] and replay["requested_by"] == first["requested_by"]
        old, new = first["status_token"], replay["status_token"]
        assert tokens.is_status_token(new) and new != old
        r = client.get(f"/v1/deletions/{first['id']}", headers=bearer(old))
        assert r.status_code == 401, r.text
        r = client.get(f"/v1/deletions/{first['id']}", headers=bearer(new))
        assert r.status_code == 200 and r.json()["id"] == first["id"]
        assert "status_token" not in r.json()
        r = client.get(f"/v1/deletions/{other['id']}", headers=bearer(other["status_token"]))
        assert r.status_code == 200, "the other key's request keeps its own token"
        r = client.get(f"/v1/deletions/{other['id']}", headers=bearer(new))
        assert r.status_code == 404

        # The same key and Idempotency-Key with another body: refused, nothing replayed.
        clash = client.post(
            "/v1/deletions", json={"subject_id": "subject-2"}, headers=bearer(a) | same
        )
        assert clash.status_code == 422 and "order-42" in clash.json()["detail"]
        # The operator's CLI is a principal of its own too.
        by_cli = cli.accept(DeletionInput(subject_id="subject-1"), "order-42")
        assert not by_cli.replayed and by_cli.request.id not in (first["id"], other["id"])

    with service.db.read() as s:
        rows = {
            r.public_id: r
            for r in s.scalars(select(DeletionRequestRow).order_by(DeletionRequestRow.id))
        }
    assert len(rows) == 3
    assert rows[first["id"]].idempotency_key == scoped_key(
        service.settings.secret(), f"key:{a.split('_')[1]}", "order-42"
    )
    assert rows[other["id"]].idempotency_key == scoped_key(
        service.settings.secret(), f"key:{b.split('_')[1]}", "order-42"
    )
    assert rows[by_cli.request.id].idempotency_key == scoped_key(
        service.settings.secret(), f"cli:{USER}", "order-42"
    )
    assert rows[first["id"]].status_token_sha256 == tokens.digest(new)
    assert all(r.idempotency_key != "order-42" for r in rows.values()), "stored hashed"
    received = [e for e in service.audit_events() if e[2] == "request.received"]
    assert len(received) == 3, "a replay writes no new request"
    report = verify_chain(service.audit_events(), service.keyring())
    assert report.ok, report.problem
