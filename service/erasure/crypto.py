"""AES-256-GCM for payloads and data keys (pure: no database).

A payload is stored as an envelope ``{"sealed": "aes-256-gcm", "key": <data key id>,
"nonce": <b64>, "ct": <b64>}``; the additional data binds the ciphertext to its key id, so
an envelope moved under another key does not open. A data key is stored wrapped by the
key-encryption key (KEK) the same way, bound to its own id.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

SEALED = "aes-256-gcm"
KEY_BYTES = 32
_NONCE = 12
_TAG = 16
WRAPPED_BYTES = _NONCE + KEY_BYTES + _TAG  # a wrapped data key: nonce, ciphertext, tag


class SealError(ValueError):
    """An envelope or wrapped key that does not open (wrong key, or changed bytes)."""


def new_key_id() -> str:
    return secrets.token_hex(16)


def new_data_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


def kek_id(kek: bytes) -> str:
    return hashlib.sha256(b"unlearn kek\n" + kek).hexdigest()[:16]


def _seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    nonce = secrets.token_bytes(_NONCE)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def _open(key: bytes, blob: bytes, aad: bytes) -> bytes:
    try:
        return AESGCM(key).decrypt(blob[:_NONCE], blob[_NONCE:], aad)
    except (InvalidTag, ValueError) as exc:
        raise SealError("does not open with this key") from exc


def wrap(kek: bytes, key_id: str, data_key: bytes) -> bytes:
    return _seal(kek, data_key, b"unlearn data key\n" + key_id.encode())


def unwrap(kek: bytes, key_id: str, wrapped: bytes) -> bytes:
    return _open(kek, wrapped, b"unlearn data key\n" + key_id.encode())


def seal_payload(key_id: str, data_key: bytes, payload: dict[str, Any]) -> dict[str, str]:
    plain = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    blob = _seal(data_key, plain, b"unlearn payload\n" + key_id.encode())
    return {
        "sealed": SEALED,
        "key": key_id,
        "nonce": base64.b64encode(blob[:_NONCE]).decode(),
        "ct": base64.b64encode(blob[_NONCE:]).decode(),
    }


def is_sealed(envelope: object) -> bool:
    return isinstance(envelope, dict) and envelope.get("sealed") == SEALED


def envelope_key(envelope: dict[str, Any]) -> str:
    if not is_sealed(envelope):
        raise SealError("not a sealed payload: a plaintext payload must never be stored")
    return str(envelope["key"])


def open_payload(data_key: bytes, envelope: dict[str, Any]) -> dict[str, Any]:
    key_id = envelope_key(envelope)
    blob = base64.b64decode(envelope["nonce"]) + base64.b64decode(envelope["ct"])
    plain = _open(data_key, blob, b"unlearn payload\n" + key_id.encode())
    payload: dict[str, Any] = json.loads(plain)
    return payload
