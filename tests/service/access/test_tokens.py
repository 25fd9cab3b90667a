"""Bearer tokens, scopes and key authentication below the API: the token format and its
check characters, only a hash in the database, role and scope resolution, why a token is
refused, and how often a key's use is written."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re
import string
import zlib

import pytest
from sqlalchemy import select

from service.access import tokens
from service.access.errors import Unauthenticated
from service.access.keys import TOUCH_EVERY, authenticate, create_key, revoke_key, touch
from service.access.principal import PrincipalType, cli_principal
from service.access.scopes import ROLES, Scope, ScopeError, resolve_scopes
from service.core import Service
from service.db.base import Base
from service.db.tables import ApiKeyRow
from service.lineage.deletion import DeletionInput
from service.lineage.errors import Unprocessable
from tests.service.conftest import synthetic_dataset

B32 = string.ascii_lowercase + "234567"
KEY_FORMAT = re.compile(r"^unlk_([a-z2-7]{12})_([a-z2-7]{52})([a-z2-7]{7})$")
STATUS_FORMAT = re.compile(r"^unls_([a-z2-7]{52})([a-z2-7]{7})$")
T0 = dt.datetime(2030, 1, 1, 12, 0, tzinfo=dt.UTC)


def check_of(body: str) -> str:
    """The check characters computed independently: base32 of the CRC-32 of the body."""
    crc = zlib.crc32(body.encode("ascii")).to_bytes(4, "big")
    return base64.b32encode(crc).decode("ascii").rstrip("=").lower()


def secret_of(token: str) -> str:
    m = KEY_FORMAT.match(token)
    assert m is not None, token
    return m.group(2)


def one_changed(token: str, start: int) -> list[str]:
    """Every token that differs from ``token`` in exactly one character at or after
    ``start``, the character replaced by another of the base32 alphabet."""
    return [
        token[:i] + c + token[i + 1 :]
        for i in range(start, len(token))
        for c in B32
        if c != token[i]
    ]


# --- the token format --------------------------------------------------------------


def test_key_format_and_key_id() -> None:
    new = tokens.new_key()
    m = KEY_FORMAT.match(new.token)
    assert m is not None, new.token
    assert new.token.startswith("unlk_")
    assert m.group(1) == new.key_id
    assert m.group(3) == check_of(new.token[:-7])
    assert tokens.key_id_of(new.token) == new.key_id
    assert not tokens.is_status_token(new.token)


def test_status_token_format() -> None:
    token, sha = tokens.new_status_token()
    m = STATUS_FORMAT.match(token)
    assert m is not None, token
    assert m.group(2) == check_of(token[:-7])
    assert tokens.is_status_token(token)
    assert tokens.key_id_of(token) is None
    assert sha == hashlib.sha256(token.encode()).hexdigest()


def test_a_changed_character_anywhere_after_the_prefix_is_refused() -> None:
    new = tokens.new_key()
    changed = one_changed(new.token, len("unlk_"))
    assert len(changed) == sum(31 if c in B32 else 32 for c in new.token[5:])
    accepted = [t for t in changed if tokens.key_id_of(t) is not None]
    assert accepted == []
    status, _ = tokens.new_status_token()
    accepted = [t for t in one_changed(status, len("unls_")) if tokens.is_status_token(t)]
    assert accepted == []


def test_look_alikes_are_refused() -> None:
    new = tokens.new_key()
    status, _ = tokens.new_status_token()
    for bad in (
        "",
        new.token.upper(),
        new.token[:-1],
        new.token + "a",
        "unlk_" + new.token[5:].replace("_", "-"),
        "unls_" + new.token[5:],  # a key's body with a status prefix
        "unlk_" + status[5:],
        f" {new.token}",
    ):
        assert tokens.key_id_of(bad) is None, bad
        assert not tokens.is_status_token(bad), bad


def test_tokens_are_distinct() -> None:
    keys = [tokens.new_key() for _ in range(200)]
    assert len({k.token for k in keys}) == 200
    assert len({k.key_id for k in keys}) == 200
    assert len({k.sha256 for k in keys}) == 200
    secrets = {secret_of(k.token) for k in keys}
    assert len(secrets) == 200
    statuses = [tokens.new_status_token() for _ in range(200)]
    assert len({t for t, _ in statuses}) == 200


def test_digest_is_sha256_hex() -> None:
    new = tokens.new_key()
    assert new.sha256 == tokens.digest(new.token)
    assert new.sha256 == hashlib.sha256(new.token.encode("utf-8")).hexdigest()
    assert re.fullmatch(r"[0-9a-f]{64}", new.sha256)
    assert tokens.digest("a") != tokens.digest("b")
    assert tokens.same(new.sha256, tokens.digest(new.token))
    assert not tokens.same(new.sha256, tokens.digest(new.token + "x"))


def test_only_the_hash_reaches_the_database(service: Service) -> None:
    created = service.acting_as(cli_principal()).create_key("portal", role="privacy-portal")
    token = created.token
    secret = secret_of(token)
    with service.db.read() as s:
        row = s.scalar(select(ApiKeyRow).where(ApiKeyRow.key_id == created.key.key_id))
        assert row is not None
        assert row.secret_sha256 == tokens.digest(token)
        assert row.scopes == sorted(str(x) for x in ROLES["privacy-portal"])
        # No column of any table (the key row, the audit chain...) holds the token.
        for table in Base.metadata.sorted_tables:
            for values in s.execute(select(table)).all():
                text = repr(tuple(values))
                assert secret not in text, table.name
                assert token not in text, table.name
    assert created.key.key_id in repr(created.key) and token not in repr(created.key)


# --- roles and scopes --------------------------------------------------------------


def test_resolve_scopes_from_roles() -> None:
    assert resolve_scopes("auditor", []) == {
        Scope.AUDIT_READ,
        Scope.DELETIONS_READ,
        Scope.MODELS_READ,
    }
    assert resolve_scopes("app", ()) == {Scope.PREDICT, Scope.MODELS_READ}
    assert resolve_scopes("admin", ()) == frozenset(Scope)
    operator = resolve_scopes("operator", ())
    assert Scope.KEYS_ADMIN not in operator and Scope.DELETIONS_CREATE not in operator
    assert Scope.MODELS_WRITE in operator


def test_resolve_explicit_scopes_and_role_plus_scopes() -> None:
    assert resolve_scopes(None, ["keys:admin"]) == {Scope.KEYS_ADMIN}
    assert resolve_scopes(None, ["predict", "predict"]) == {Scope.PREDICT}
    assert resolve_scopes("app", ["audit:read"]) == {
        Scope.PREDICT,
        Scope.MODELS_READ,
        Scope.AUDIT_READ,
    }


def test_resolve_scopes_refuses_unknown_and_empty() -> None:
    with pytest.raises(ScopeError, match="unknown role 'root'"):
        resolve_scopes("root", [])
    with pytest.raises(ScopeError, match="unknown scope 'models:delete'"):
        resolve_scopes("app", ["models:delete"])
    with pytest.raises(ScopeError, match="give a role or at least one scope"):
        resolve_scopes(None, [])
    assert issubclass(ScopeError, ValueError)


def test_service_create_key_refuses_bad_roles_as_unprocessable(service: Service) -> None:
    operator = service.acting_as(cli_principal())
    with pytest.raises(Unprocessable, match="unknown role"):
        operator.create_key("x", role="root")
    with pytest.raises(Unprocessable, match="give a role"):
        operator.create_key("x", role=None)
    assert operator.api_keys() == []


# --- authenticate ------------------------------------------------------------------


def _reason(service: Service, token: str, now: dt.datetime | None = None) -> str:
    with service.db.read() as s, pytest.raises(Unauthenticated) as info:
        authenticate(s, token, now=now)
    assert token not in str(info.value)
    return str(info.value)


def test_authenticate_a_valid_key(service: Service) -> None:
    with service.db.write() as s:
        row, token = create_key(s, "reader", resolve_scopes("auditor", ()), role="auditor")
        key_id = row.key_id
    with service.db.read() as s:
        principal = authenticate(s, token)
    assert principal.type == PrincipalType.KEY
    assert principal.id == key_id and principal.name == "reader"
    assert principal.scopes == ROLES["auditor"]
    assert principal.request is None


def test_authenticate_says_why_a_token_is_refused(service: Service) -> None:
    with service.db.write() as s:
        row, token = create_key(
            s, "k", {Scope.PREDICT}, expires_at=T0 + dt.timedelta(hours=1), now=T0
        )
        key_id = row.key_id
        revoked_row, revoked = create_key(s, "r", {Scope.PREDICT}, now=T0)
        revoke_key(s, revoked_row.key_id, now=T0)
    secret = secret_of(token)
    other = secret_of(tokens.new_key().token)
    assert other != secret
    body = f"unlk_{key_id}_{other}"
    wrong_secret = body + check_of(body)
    assert tokens.key_id_of(wrong_secret) == key_id  # well formed, its id exists

    malformed = _reason(service, "not-a-token")
    unknown_id = _reason(service, tokens.new_key().token)
    wrong = _reason(service, wrong_secret)
    was_revoked = _reason(service, revoked)
    expired = _reason(service, token, now=T0 + dt.timedelta(hours=1))
    unknown_status = _reason(service, tokens.new_status_token()[0])

    assert "not an unlearn API key" in malformed
    assert unknown_id == "unknown API key"
    # A wrong secret is told apart from neither an unknown key id: a caller learns
    # nothing about which key ids exist.
    assert wrong == unknown_id
    assert was_revoked == f"API key {revoked_row.key_id} was revoked"
    assert expired == f"API key {key_id} expired"
    assert unknown_status == "unknown status token"
    assert len({malformed, unknown_id, was_revoked, expired, unknown_status}) == 5
    # Just before the expiry the key still holds.
    with service.db.read() as s:
        assert authenticate(s, token, now=T0 + dt.timedelta(minutes=59)).id == key_id


def test_a_status_token_maps_to_its_request(service: Service) -> None:
    service.import_dataset("synthetic", synthetic_dataset(24, n_subjects=4))
    first = service.accept(DeletionInput(subject_id="subject-0", dataset="synthetic"))
    second = service.accept(DeletionInput(subject_id="subject-1", dataset="synthetic"))
    assert first.status_token is not None and second.status_token is not None
    assert tokens.is_status_token(first.status_token)
    for accepted in (first, second):
        assert accepted.status_token is not None
        principal = service.authenticate(accepted.status_token)
        assert principal.type == PrincipalType.STATUS_TOKEN
        assert principal.request == accepted.request.id
        assert principal.scopes == frozenset()
        assert not principal.is_key
    with service.db.read() as s:
        from service.db.tables import DeletionRequestRow

        stored = s.scalar(
            select(DeletionRequestRow.status_token_sha256).where(
                DeletionRequestRow.public_id == first.request.id
            )
        )
    assert stored == tokens.digest(first.status_token)


# --- last use ----------------------------------------------------------------------


def _last_used(service: Service, key_id: str) -> dt.datetime | None:
    with service.db.read() as s:
        return s.scalar(select(ApiKeyRow.last_used_at).where(ApiKeyRow.key_id == key_id))


def test_touch_writes_at_most_once_per_interval(service: Service) -> None:
    with service.db.write() as s:
        key_id = create_key(s, "k", {Scope.PREDICT}, now=T0)[0].key_id
    assert _last_used(service, key_id) is None
    steps = [
        (T0, True, T0),
        (T0 + dt.timedelta(seconds=1), False, T0),
        (T0 + TOUCH_EVERY, False, T0),  # exactly one interval later: not yet
        (
            T0 + TOUCH_EVERY + dt.timedelta(seconds=1),
            True,
            T0 + TOUCH_EVERY + dt.timedelta(seconds=1),
        ),
        (
            T0 + TOUCH_EVERY + dt.timedelta(seconds=30),
            False,
            T0 + TOUCH_EVERY + dt.timedelta(seconds=1),
        ),
    ]
    for now, wrote, last in steps:
        with service.db.write() as s:
            assert touch(s, key_id, now=now) is wrote, now
        assert _last_used(service, key_id) == last, now
    with service.db.write() as s:
        assert touch(s, "nosuchkeyid0", now=T0) is False


def test_authenticating_records_the_use_once_a_minute(service: Service) -> None:
    created = service.acting_as(cli_principal()).create_key("k", role="app")
    key_id = created.key.key_id
    assert _last_used(service, key_id) is None
    before = dt.datetime.now(dt.UTC)
    service.authenticate(created.token)
    first = _last_used(service, key_id)
    assert first is not None
    assert before <= first <= dt.datetime.now(dt.UTC)
    service.authenticate(created.token)
    assert _last_used(service, key_id) == first
