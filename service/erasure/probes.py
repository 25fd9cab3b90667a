"""Fingerprints of erased data that let a scan recognise a remnant without keeping the data.

- **Text probes.** An erased record's text, lowercased and split into words, gives one
  shingle per run of :data:`SHINGLE` consecutive words (the whole text when shorter). Each is
  kept as a 64-bit HMAC under a key derived from the deployment secret, on the tombstone
  (``records.probes``, with the shingle length), written in the erasing transaction while
  the payload still opens. Like ``content_hmac``, a probe confirms a guessed phrase only to
  whoever holds the secret, and reveals nothing else.
- **Key probes.** A destroyed data key's wrapped bytes are random: the row of
  ``destroyed_keys`` keeps their first 8 bytes (the nonce's start, public in every copy) as an
  anchor to search for, and their SHA-256 to confirm a hit.

Pure: no database, no files (``service.erasure.scan`` reads those).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Any

SHINGLE = 4
ANCHOR_BYTES = 8
# A remnant: this many of a record's distinct shingles in one place (all, when it has fewer).
MIN_MATCHES = 3

_WORD = re.compile(r"[^\W_]+")
_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})|\\[nrtbf\"\\/]")


def probe_key(secret: bytes) -> bytes:
    return hmac.digest(secret, b"unlearn erasure probes v1", "sha256")


def words(text: str) -> list[str]:
    """Lowercased words (letters and digits of any script), JSON escapes undone first."""
    return _WORD.findall(_unescape(text).lower())


def _unescape(text: str) -> str:
    if "\\" not in text:
        return text

    def one(m: re.Match[str]) -> str:
        return chr(int(m.group(1), 16)) if m.group(1) else " "

    return _ESCAPE.sub(one, text)


def shingles(ws: list[str], size: int = SHINGLE) -> list[str]:
    """Every run of ``size`` consecutive words (the whole list when shorter)."""
    if len(ws) <= size:
        return [" ".join(ws)] if ws else []
    return [" ".join(ws[i : i + size]) for i in range(len(ws) - size + 1)]


def digest(key: bytes, shingle: str) -> str:
    return hmac.digest(key, shingle.encode(), "sha256")[:8].hex()


def text_probes(key: bytes, text: str) -> dict[str, Any] | None:
    """``{"words": n, "digests": [...]}``: the distinct digests of the text's shingles of
    ``n`` words (:data:`SHINGLE`, or all of a shorter text's), sorted; None without words."""
    ws = words(text)
    if not ws:
        return None
    return {
        "words": min(len(ws), SHINGLE),
        "digests": sorted({digest(key, s) for s in shingles(ws)}),
    }


def needed(n_probes: int) -> int:
    """How many of a record's probes one place must hold to count as a remnant."""
    return min(n_probes, MIN_MATCHES)


def key_probe(wrapped: bytes) -> tuple[str, str]:
    """(anchor, sha256) of a wrapped data key, both hex."""
    return wrapped[:ANCHOR_BYTES].hex(), hashlib.sha256(wrapped).hexdigest()
