"""``unlearn keys create|list|revoke``, ``parse_expiry``, the embedded admin key and the
curl examples ``unlearn serve`` prints (each one run against the app it serves)."""

from __future__ import annotations

import datetime as dt
import getpass
import hashlib
import json
import re
import shlex
import socket
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner, Result

from service.access.errors import Unauthenticated
from service.access.principal import PrincipalType
from service.access.scopes import ROLES, Scope
from service.api.app import create_app
from service.cli import serve as serve_cli
from service.cli.keys import parse_expiry
from service.cli.main import app
from service.cli.serve import curl_examples
from service.core import Service
from service.db.tables import ApiKeyRow, RecordRow
from service.settings import Settings
from service.states import RecordState
from service.views import DemoTargets, KeyView
from tests.service.api.conftest import drain, jsonl
from tests.service.cli.conftest import free_port
from tests.service.clients import bearer
from tests.service.conftest import SMALL, _settings, synthetic_dataset

runner = CliRunner()
TOKEN = re.compile(r"\bunlk_[a-z2-7]{12}_[a-z2-7]{59}\b")
KEY_FIELDS = set(KeyView.model_fields)
UTC = dt.UTC


def invoke(args: list[str]) -> Result:
    return runner.invoke(app, args)


def ok(args: list[str]) -> str:
    result = invoke(args)
    assert result.exit_code == 0, result.output
    return result.output


def create(args: list[str]) -> tuple[str, str]:
    """``keys create ARGS``: (its output, the one token it printed)."""
    out = ok(["keys", "create", *args])
    tokens = TOKEN.findall(out)
    assert len(tokens) == 1, out
    assert out.count(tokens[0]) == 1, "the token is printed once"
    return out, tokens[0]


def key_id(token: str) -> str:
    return token.split("_")[1]


def listed(*extra: str) -> list[dict[str, Any]]:
    data = json.loads(ok(["keys", "list", "--json", *extra]))
    assert isinstance(data, list)
    return data


@pytest.fixture
def env_service(cli_env: Path) -> Iterator[Service]:
    """The service the CLI's environment opens (same UNLEARN_HOME), acting as the system;
    the first CLI call of a test creates and migrates its database."""
    ok(["keys", "list"])
    svc = Service.open(Settings.from_env())
    yield svc
    svc.db.dispose()


def secrets_of(svc: Service) -> list[str]:
    with svc.db.read() as s:
        return list(s.scalars(select(ApiKeyRow.secret_sha256)))


# --- keys create ------------------------------------------------------------------------


def test_create_prints_the_token_once(cli_env: Path) -> None:
    out, token = create(["--name", "portal", "--role", "privacy-portal"])
    kid = key_id(token)
    lines = out.splitlines()
    assert lines[0] == f"created key {kid} (portal): deletions:create, deletions:read"
    assert lines[1] == "expires: never"
    assert lines[-1] == token, "the token stands alone on the last line (copy-paste)"

    svc = Service.open(Settings.from_env())
    try:
        with svc.db.read() as s:
            row = s.scalars(select(ApiKeyRow)).one()
        assert row.key_id == kid and row.name == "portal" and row.role == "privacy-portal"
        assert row.secret_sha256 == hashlib.sha256(token.encode()).hexdigest()
        assert row.created_by == {
            "type": "cli",
            "id": getpass.getuser(),
            "name": f"unlearn CLI ({getpass.getuser()})",
        }
        principal = svc.authenticate(token)
        assert principal.type == PrincipalType.KEY and principal.id == kid
        assert principal.scopes == ROLES["privacy-portal"]
    finally:
        svc.db.dispose()
    # Only the hash is kept: the token is in no file of the data directory.
    home = cli_env / "data"
    for path in home.rglob("*"):
        if path.is_file():
            assert token.encode() not in path.read_bytes(), path


def test_create_with_repeated_scopes_and_an_expiry(cli_env: Path) -> None:
    before = dt.datetime.now(UTC)
    out = ok(
        [
            "keys",
            "create",
            "--name",
            "ci",
            "--scope",
            "predict",
            "--scope",
            "models:read",
            "--scope",
            "predict",
            "--expires",
            "90d",
            "--json",
        ]
    )
    after = dt.datetime.now(UTC)
    created = json.loads(out)
    assert set(created) == {"key", "token"} and TOKEN.fullmatch(created["token"])
    key = created["key"]
    assert key["scopes"] == ["models:read", "predict"] and key["role"] is None
    expires = dt.datetime.fromisoformat(key["expires_at"])
    assert expires.tzinfo is not None
    assert before + dt.timedelta(days=90) <= expires <= after + dt.timedelta(days=90)

    # A role and extra scopes add up; an ISO date means midnight UTC.
    _, token = create(
        ["--name", "app+", "--role", "app", "--scope", "audit:read", "--expires", "2099-06-30"]
    )
    mine = next(k for k in listed() if k["key_id"] == key_id(token))
    assert mine["role"] == "app"
    assert mine["scopes"] == sorted(str(s) for s in ROLES["app"] | {Scope.AUDIT_READ})
    assert dt.datetime.fromisoformat(mine["expires_at"]) == dt.datetime(2099, 6, 30, tzinfo=UTC)
    assert "expires: never" not in ok(
        ["keys", "create", "--name", "soon", "--role", "app", "--expires", "12h"]
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--role", "app", "--expires", "soon"], "--expires must look like 90d"),
        (["--role", "app", "--expires", "90w"], "--expires must look like 90d"),
        (["--role", "app", "--expires", "-1d"], "--expires must look like 90d"),
        (["--role", "app", "--expires", "0d"], "the expiry must be in the future"),
        (["--role", "app", "--expires", "2001-01-01"], "the expiry must be in the future"),
        (["--role", "superuser"], "unknown role 'superuser'"),
        (["--scope", "deletions:erase"], "unknown scope 'deletions:erase'"),
        (["--role", "app", "--scope", "root"], "unknown scope 'root'"),
        ([], "give a role or at least one scope"),
    ],
)
def test_create_refuses_bad_input_with_one_line(
    cli_env: Path, args: list[str], message: str
) -> None:
    result = invoke(["keys", "create", "--name", "x", *args])
    assert result.exit_code == 2, result.output
    err = result.stderr.strip()
    assert err.startswith("error: ") and message in err, err
    assert "\n" not in err, "one line, no traceback"
    assert "Traceback" not in result.output and not TOKEN.search(result.output)
    assert listed("--all") == [], "nothing was created"


@pytest.mark.parametrize(
    "args",
    [
        ["--role", "[/x]"],
        ["--role", "[bold]adm"],
        ["--scope", "[/]"],
        ["--role", "app", "--expires", "[/]"],
    ],
)
def test_errors_quote_input_with_brackets_verbatim(cli_env: Path, args: list[str]) -> None:
    result = invoke(["keys", "create", "--name", "x", *args])
    assert result.exit_code == 2, result.output
    err = result.stderr.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    assert repr(args[-1]) in err, err


def test_create_refuses_a_blank_name(cli_env: Path) -> None:
    result = invoke(["keys", "create", "--name", "  ", "--role", "app"])
    assert result.exit_code == 2 and "needs a name" in result.stderr
    assert listed("--all") == []


# --- keys list / revoke -----------------------------------------------------------------


def test_list_shows_keys_but_never_a_token_or_its_hash(env_service: Service) -> None:
    _, portal = create(["--name", "portal", "--role", "privacy-portal"])
    _, auditor = create(["--name", "dpo", "--role", "auditor", "--expires", "30d"])
    ok(["keys", "revoke", key_id(auditor)])
    tokens = [portal, auditor]
    hashes = secrets_of(env_service)
    assert len(hashes) == 2

    table = ok(["keys", "list"])
    plain = ok(["keys", "list", "--all"])
    active = listed()
    every = listed("--all")
    for text in (table, plain, json.dumps(active), json.dumps(every)):
        for secret in tokens + hashes:
            assert secret not in text
        assert "unlk_" not in text, "no token, not even a prefix of one"
    assert key_id(portal) in table and "portal" in table
    assert key_id(auditor) not in table, "a revoked key is listed with --all only"
    assert key_id(portal) in plain and key_id(auditor) in plain
    # Piped (CliRunner is no terminal): tab-separated, whole values, nothing wrapped or cut.
    lines = plain.splitlines()
    assert lines[0].split("\t")[:2] == ["key id", "name"] and len(lines) == 3
    row = dict(zip(lines[0].split("\t"), lines[2].split("\t"), strict=True))
    assert row["scopes"] == " ".join(sorted(str(s) for s in ROLES["auditor"]))

    assert [k["key_id"] for k in active] == [key_id(portal)]
    assert [k["key_id"] for k in every] == [key_id(portal), key_id(auditor)]
    for k in every:
        assert set(k) == KEY_FIELDS, "exactly the view's fields: no token, no hash"
        assert k["created_by"]["type"] == "cli" and k["created_by"]["id"] == getpass.getuser()
    assert every[0]["revoked_at"] is None and every[0]["expires_at"] is None
    assert every[1]["revoked_at"] is not None and every[1]["expires_at"] is not None
    assert every[1]["role"] == "auditor"
    assert every[1]["scopes"] == sorted(str(s) for s in ROLES["auditor"])


def test_revoke_stops_the_token_at_once(env_service: Service) -> None:
    _, token = create(["--name", "portal", "--role", "privacy-portal"])
    _, other = create(["--name", "other", "--role", "app"])
    kid = key_id(token)
    assert env_service.authenticate(token).id == kid

    out = ok(["keys", "revoke", kid])
    assert out.startswith(f"key {kid} (portal) revoked at ")
    with pytest.raises(Unauthenticated, match="revoked"):
        env_service.authenticate(token)
    assert env_service.authenticate(other).id == key_id(other), "other keys still work"
    assert [k["key_id"] for k in listed()] == [key_id(other)]
    revoked = next(k for k in listed("--all") if k["key_id"] == kid)
    assert revoked["revoked_at"] is not None

    # Revoking again changes nothing (one key.revoked event); an unknown id exits 2.
    assert ok(["keys", "revoke", kid]) == out
    kinds = [e[2] for e in env_service.audit_events()]
    assert kinds.count("key.revoked") == 1 and kinds.count("key.created") == 2
    missing = invoke(["keys", "revoke", "aaaaaaaaaaaa"])
    assert missing.exit_code == 2 and "no API key 'aaaaaaaaaaaa'" in missing.stderr

    # A whole token pasted instead of the id revokes its key and is never echoed.
    pasted = invoke(["keys", "revoke", other])
    assert pasted.exit_code == 0 and other not in pasted.output + pasted.stderr
    assert f"key {key_id(other)} (other) revoked" in pasted.output
    forged = other[:-7] + ("a" if other[-7] != "a" else "b") + other[-6:]
    wrong = invoke(["keys", "revoke", forged])
    assert wrong.exit_code == 2 and forged not in wrong.stderr and "no API key" in wrong.stderr


def test_a_created_key_works_against_the_api(env_service: Service) -> None:
    _, token = create(["--name", "portal", "--role", "privacy-portal"])
    api = create_app(Service.open(Settings.from_env()), run_worker=False)
    files = {"file": ("s.jsonl", jsonl(synthetic_dataset(12)), "application/x-ndjson")}
    try:
        with TestClient(api) as client:
            r = client.get("/v1/deletions", headers=bearer(token))
            assert r.status_code == 200, r.text
            assert r.json() == {"items": [], "next_cursor": None}
            r = client.post("/v1/datasets", headers=bearer(token), data={"name": "up"}, files=files)
            assert r.status_code == 403, r.text
            assert "datasets:write" in r.json()["detail"]
            assert client.get("/v1/deletions").status_code == 401

            ok(["keys", "revoke", key_id(token)])
            r = client.get("/v1/deletions", headers=bearer(token))
            assert r.status_code == 401 and "revoked" in r.json()["detail"]
    finally:
        api.state.service.db.dispose()


# --- parse_expiry -----------------------------------------------------------------------

NOW = dt.datetime(2026, 1, 31, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90d", NOW + dt.timedelta(days=90)),
        ("1d", NOW + dt.timedelta(days=1)),
        ("12h", NOW + dt.timedelta(hours=12)),
        ("30m", NOW + dt.timedelta(minutes=30)),
        (" 7d ", NOW + dt.timedelta(days=7)),
        ("0d", NOW),
        ("2027-06-30", dt.datetime(2027, 6, 30, tzinfo=UTC)),
        ("2027-06-30T08:30:00", dt.datetime(2027, 6, 30, 8, 30, tzinfo=UTC)),
        (
            "2027-06-30T08:30:00+02:00",
            dt.datetime(2027, 6, 30, 8, 30, tzinfo=dt.timezone(dt.timedelta(hours=2))),
        ),
    ],
)
def test_parse_expiry(text: str, expected: dt.datetime) -> None:
    got = parse_expiry(text, now=NOW)
    assert got == expected and got.tzinfo is not None
    assert got.utcoffset() == expected.utcoffset()


@pytest.mark.parametrize(
    "text", ["", "soon", "90", "90w", "1.5d", "-1d", "d90", "90 d", "tomorrow"]
)
def test_parse_expiry_refuses(text: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(typer.Exit) as exc:
        parse_expiry(text, now=NOW)
    assert exc.value.exit_code == 2
    err = capsys.readouterr().err
    assert "--expires must look like" in err and repr(text) in err


def test_parse_expiry_defaults_to_now() -> None:
    before = dt.datetime.now(UTC)
    got = parse_expiry("1h")
    assert before + dt.timedelta(hours=1) <= got <= dt.datetime.now(UTC) + dt.timedelta(hours=1)


# --- the embedded admin key -------------------------------------------------------------


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[Service]:
    svc = Service.open(_settings(tmp_path))
    svc.upgrade_schema()
    yield svc
    svc.db.dispose()


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_embedded_admin_token_is_kept_0600_and_reused(embedded: Service) -> None:
    path = embedded.settings.admin_key_file
    assert path == embedded.settings.home / "admin.key" and not path.exists()
    token = embedded.embedded_admin_token()
    assert path.read_text() == token + "\n" and _mode(path) == 0o600
    principal = embedded.authenticate(token)
    assert principal.is_key and principal.scopes == frozenset(Scope)
    assert principal.name == "embedded admin (unlearn serve)"

    assert embedded.embedded_admin_token() == token, "the stored key is reused"
    assert [k.key_id for k in embedded.api_keys(include_revoked=True)] == [key_id(token)]
    assert [e[2] for e in embedded.audit_events()].count("key.created") == 1


def test_embedded_admin_token_is_replaced_once_revoked(embedded: Service) -> None:
    path = embedded.settings.admin_key_file
    old = embedded.embedded_admin_token()
    embedded.revoke_key(key_id(old))
    new = embedded.embedded_admin_token()
    assert new != old and TOKEN.fullmatch(new)
    assert path.read_text() == new + "\n" and _mode(path) == 0o600
    assert embedded.authenticate(new).scopes == frozenset(Scope)
    with pytest.raises(Unauthenticated):
        embedded.authenticate(old)
    assert embedded.embedded_admin_token() == new
    assert [k.key_id for k in embedded.api_keys()] == [key_id(new)]
    assert len(embedded.api_keys(include_revoked=True)) == 2


def test_embedded_admin_token_replaces_a_garbled_file(embedded: Service) -> None:
    path = embedded.settings.admin_key_file
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("unlk_not-a-real-key\n")
    path.chmod(0o644)
    token = embedded.embedded_admin_token()
    assert TOKEN.fullmatch(token) and path.read_text() == token + "\n"
    assert _mode(path) == 0o600, "a replaced file is private again"


# --- curl examples ----------------------------------------------------------------------

FAKE = "unlk_aaaaaaaaaaaa_" + "b" * 59


def curl_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip().startswith("curl ")]


def parse_curl(line: str) -> dict[str, Any]:
    """A printed ``curl`` line as (method, url, headers, body), the way curl reads it."""
    args = shlex.split(line)
    assert args[0] == "curl"
    method, url, body = None, None, None
    headers: dict[str, str] = {}
    i = 1
    while i < len(args):
        arg = args[i]
        if arg == "-s":
            i += 1
        elif arg in ("-X", "-H", "-d"):
            value = args[i + 1]
            if arg == "-X":
                method = value
            elif arg == "-H":
                name, _, val = value.partition(": ")
                assert name and val, value
                headers[name] = val
            else:
                body = value
            i += 2
        else:
            assert url is None and arg.startswith("http"), f"unexpected argument {arg!r}"
            url = arg
            i += 1
    assert url is not None
    return {
        "method": method or ("POST" if body is not None else "GET"),
        "url": url,
        "headers": headers,
        "body": body,
    }


@pytest.mark.parametrize(
    ("targets", "model", "record"),
    [
        (DemoTargets(model_id=7, record_id="rec-0003"), 7, "rec-0003"),
        (DemoTargets(model_id=None, record_id=None), 1, "RECORD_ID"),
    ],
)
def test_curl_examples_carry_the_token(targets: DemoTargets, model: int, record: str) -> None:
    text = curl_examples(targets, "http://127.0.0.1:8000", FAKE)
    lines = curl_lines(text)
    assert len(lines) == 3 and len(text.splitlines()) == 4
    calls = [parse_curl(line) for line in lines]
    for call in calls:
        assert call["headers"]["Authorization"] == f"Bearer {FAKE}"
        assert call["url"].startswith("http://127.0.0.1:8000/v1/")
    assert [(c["method"], c["url"].split(":8000")[1]) for c in calls] == [
        ("GET", f"/v1/models/{model}"),
        ("POST", f"/v1/models/{model}/predict"),
        ("POST", "/v1/deletions"),
    ]
    assert json.loads(calls[1]["body"]) == {"inputs": ["a warm, funny film"]}
    assert json.loads(calls[2]["body"]) == {"record_ids": [record]}
    assert calls[2]["headers"]["Idempotency-Key"] == "demo-1"


def test_serve_prints_the_admin_key_and_curl_examples_that_work(
    cli_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``unlearn serve`` on the embedded default with a trained model: every printed example,
    sent as printed to the app it serves, answers 2xx (trains SMALL: a few seconds)."""
    svc = Service.open(Settings.from_env())
    svc.upgrade_schema()
    svc.import_dataset("synthetic", synthetic_dataset())
    model_id = svc.create_model("synthetic", SMALL)
    drain(svc)
    assert svc.model_status(model_id).status == "ready"
    svc.db.dispose()

    served: list[FastAPI] = []
    port = free_port()

    def fake_run(api: FastAPI, sock: socket.socket) -> None:
        assert sock.getsockname() == ("127.0.0.1", port)
        served.append(api)

    monkeypatch.setattr(serve_cli, "run_server", fake_run)
    out = ok(["serve", "--no-worker", "--port", str(port), "--no-progress"])
    assert len(served) == 1
    keyfile = cli_env / "data" / "admin.key"
    token = keyfile.read_text().strip()
    assert _mode(keyfile) == 0o600
    assert TOKEN.findall(out)[0] == token and f"  {token}\n" in out
    assert f"kept in {keyfile}" in out
    lines = curl_lines(out)
    assert len(lines) == 3
    again = ok(["serve", "--no-worker", "--port", str(port), "--no-progress"])
    assert curl_lines(again) == lines, "the same stored admin key on a second start"

    api = served[0]
    try:
        with TestClient(api) as client:
            for line in lines:
                call = parse_curl(line)
                assert call["headers"]["Authorization"] == f"Bearer {token}"
                url = urllib.parse.urlsplit(call["url"])
                assert url.netloc == f"127.0.0.1:{port}"
                r = client.request(
                    call["method"],
                    url.path,
                    headers=call["headers"],
                    content=None if call["body"] is None else call["body"].encode(),
                )
                assert 200 <= r.status_code < 300, f"{line}\n-> {r.status_code} {r.text[:300]}"
                if url.path.endswith("/predict"):
                    assert r.json()["labels"][0] in ("neg", "pos")
                elif url.path == "/v1/deletions":
                    assert r.json()["n_records"] == 1 and r.json()["state"] == "effective"
            record = json.loads(parse_curl(lines[2])["body"])["record_ids"][0]
    finally:
        for served_app in served:
            served_app.state.service.db.dispose()
    check = Service.open(Settings.from_env())
    try:
        with check.db.read() as s:
            row = s.scalars(select(RecordRow).where(RecordRow.record_id == record)).one()
        assert row.state == RecordState.ERASED and row.payload is None
    finally:
        check.db.dispose()
