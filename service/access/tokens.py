"""Bearer tokens (pure): API keys and subject status tokens.

An API key reads ``unlk_<key id>_<secret><check>``: the prefix makes a leaked key easy to
recognise (secret scanners, log greps), the key id finds its row without a scan, the secret
is 256 random bits and the 7-character check (CRC-32 of the rest) lets a scanner tell a real
key from a look-alike offline. A status token reads ``unls_<secret><check>``. Only the
SHA-256 of a token is stored: the secret is random, so no slow hash is needed, and the
comparison is constant-time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import zlib
from dataclasses import dataclass

KEY_PREFIX = "unlk_"
STATUS_PREFIX = "unls_"
_B32 = "[a-z2-7]"
_KEY = re.compile(rf"^{KEY_PREFIX}({_B32}{{12}})_({_B32}{{52}})({_B32}{{7}})$")
_STATUS = re.compile(rf"^{STATUS_PREFIX}({_B32}{{52}})({_B32}{{7}})$")


def _b32(data: bytes) -> str:
    return base64.b32encode(data).decode("ascii").rstrip("=").lower()


def _check(body: str) -> str:
    return _b32(zlib.crc32(body.encode("ascii")).to_bytes(4, "big"))


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("ascii"), b.encode("ascii"))


@dataclass(frozen=True)
class NewKey:
    key_id: str
    token: str  # shown once, never stored
    sha256: str


def new_key() -> NewKey:
    key_id = _b32(secrets.token_bytes(8))[:12]  # 60 bits: finds the row, not a secret
    body = f"{KEY_PREFIX}{key_id}_{_b32(secrets.token_bytes(32))[:52]}"
    token = body + _check(body)
    return NewKey(key_id, token, digest(token))


def new_status_token() -> tuple[str, str]:
    """(the token, its SHA-256)."""
    body = STATUS_PREFIX + _b32(secrets.token_bytes(32))[:52]
    token = body + _check(body)
    return token, digest(token)


def key_id_of(token: str) -> str | None:
    """The key id of a well-formed API key (check characters right), else ``None``."""
    m = _KEY.match(token)
    if m is None or _check(token[: -len(m.group(3))]) != m.group(3):
        return None
    return m.group(1)


def is_status_token(token: str) -> bool:
    m = _STATUS.match(token)
    return m is not None and _check(token[: -len(m.group(2))]) == m.group(2)
