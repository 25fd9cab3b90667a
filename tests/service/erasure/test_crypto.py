"""``service.erasure.crypto`` (pure): AES-256-GCM envelopes bound to their key id, and data
keys wrapped by the KEK bound to their own id."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from service.erasure import crypto

PAYLOAD: dict[str, Any] = {"text": "the zebracorn-7 was brilliant"}


def _flip(b64: str, at: int) -> str:
    raw = bytearray(base64.b64decode(b64))
    raw[at] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


def test_a_sealed_payload_opens_to_the_same_dict_and_holds_no_plaintext() -> None:
    key_id, key = crypto.new_key_id(), crypto.new_data_key()
    assert len(key) == crypto.KEY_BYTES == 32 and len(key_id) == 32
    features = {"features": [0.0, 0.25, 1.0, -3.5]}
    for payload in (PAYLOAD, features, {}):
        envelope = crypto.seal_payload(key_id, key, payload)
        assert set(envelope) == {"sealed", "key", "nonce", "ct"}
        assert envelope["sealed"] == crypto.SEALED == "aes-256-gcm"
        assert envelope["key"] == key_id
        assert len(base64.b64decode(envelope["nonce"])) == 12
        assert crypto.is_sealed(envelope) and crypto.envelope_key(envelope) == key_id
        assert crypto.open_payload(key, envelope) == payload
        # Through JSON, as the database stores it.
        assert crypto.open_payload(key, json.loads(json.dumps(envelope))) == payload
    envelope = crypto.seal_payload(key_id, key, PAYLOAD)
    blob = json.dumps(envelope).encode()
    assert b"zebracorn" not in blob and b"brilliant" not in blob
    # A fresh nonce per seal: the same payload never gives the same ciphertext twice.
    again = crypto.seal_payload(key_id, key, PAYLOAD)
    assert again["nonce"] != envelope["nonce"] and again["ct"] != envelope["ct"]


def test_another_data_key_does_not_open_an_envelope() -> None:
    key_id, key = crypto.new_key_id(), crypto.new_data_key()
    envelope = crypto.seal_payload(key_id, key, PAYLOAD)
    other = crypto.new_data_key()
    assert other != key
    with pytest.raises(crypto.SealError):
        crypto.open_payload(other, envelope)
    assert issubclass(crypto.SealError, ValueError)


@pytest.mark.parametrize("field", ["ct", "nonce"])
def test_a_changed_byte_does_not_open(field: str) -> None:
    key_id, key = crypto.new_key_id(), crypto.new_data_key()
    envelope = crypto.seal_payload(key_id, key, PAYLOAD)
    n = len(base64.b64decode(envelope[field]))
    for at in (0, n // 2, n - 1):  # the body and the tag alike
        changed = {**envelope, field: _flip(envelope[field], at)}
        with pytest.raises(crypto.SealError):
            crypto.open_payload(key, changed)
    truncated = {**envelope, "ct": base64.b64encode(base64.b64decode(envelope["ct"])[:-1]).decode()}
    with pytest.raises(crypto.SealError):
        crypto.open_payload(key, truncated)
    assert crypto.open_payload(key, envelope) == PAYLOAD  # the original still opens


def test_an_envelope_moved_under_another_key_id_does_not_open() -> None:
    key_id, key = crypto.new_key_id(), crypto.new_data_key()
    envelope = crypto.seal_payload(key_id, key, PAYLOAD)
    moved = {**envelope, "key": crypto.new_key_id()}
    # Even with the right key bytes: the key id is in the additional data.
    with pytest.raises(crypto.SealError):
        crypto.open_payload(key, moved)


def test_a_wrapped_data_key_unwraps_only_with_its_kek_and_its_own_id() -> None:
    kek, key_id, key = crypto.new_data_key(), crypto.new_key_id(), crypto.new_data_key()
    wrapped = crypto.wrap(kek, key_id, key)
    assert key not in wrapped and len(wrapped) == 12 + 32 + 16
    assert crypto.unwrap(kek, key_id, wrapped) == key
    assert crypto.wrap(kek, key_id, key) != wrapped  # fresh nonce
    with pytest.raises(crypto.SealError):
        crypto.unwrap(kek, crypto.new_key_id(), wrapped)  # under another key's id
    with pytest.raises(crypto.SealError):
        crypto.unwrap(crypto.new_data_key(), key_id, wrapped)  # another KEK
    changed = bytearray(wrapped)
    changed[20] ^= 0x80
    with pytest.raises(crypto.SealError):
        crypto.unwrap(kek, key_id, bytes(changed))
    # A wrapped key is not a payload envelope: the domains are separated.
    blob = crypto._seal(key, b"{}", b"unlearn payload\n" + key_id.encode())
    with pytest.raises(crypto.SealError):
        crypto.unwrap(key, key_id, blob)


def test_kek_ids_tell_keks_apart_and_reveal_nothing_of_them() -> None:
    kek = crypto.new_data_key()
    assert crypto.kek_id(kek) == crypto.kek_id(bytes(kek))
    assert len(crypto.kek_id(kek)) == 16
    assert crypto.kek_id(kek) != crypto.kek_id(crypto.new_data_key())
    assert kek.hex()[:16] != crypto.kek_id(kek)


@pytest.mark.parametrize(
    "plain",
    [
        {"text": "the zebracorn-1 was dull"},
        {"features": [0.5, 0.5]},
        {"sealed": "none", "key": "k", "nonce": "", "ct": "the zebracorn-2"},
        {"sealed": "AES-256-GCM", "key": "k", "nonce": "", "ct": ""},
        {},
    ],
)
def test_a_plaintext_dict_is_refused(plain: dict[str, Any]) -> None:
    assert not crypto.is_sealed(plain)
    with pytest.raises(crypto.SealError, match="plaintext payload must never be stored"):
        crypto.envelope_key(plain)
    with pytest.raises(crypto.SealError):
        crypto.open_payload(crypto.new_data_key(), plain)


@pytest.mark.parametrize("value", [None, "aes-256-gcm", ["sealed", "aes-256-gcm"], 1])
def test_is_sealed_is_false_for_what_is_not_a_dict(value: object) -> None:
    assert not crypto.is_sealed(value)
