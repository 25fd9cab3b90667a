"""Canonical JSON (RFC 8785, JCS) for the values audit events hold.

Events carry strings, integers, booleans, null, lists and objects; floats are refused (their
JCS form needs ECMAScript number printing, and no event needs one: times are ISO strings).
Object keys sort by their UTF-16 code units, as JCS requires.
"""

from __future__ import annotations

import json
from typing import Any


def canonical(value: Any) -> bytes:
    return _encode(value).encode("utf-8")


def _encode(value: Any) -> str:
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        raise TypeError("audit events hold no floats (use a string or an integer)")
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ",".join(_encode(v) for v in value) + "]"
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise TypeError("audit event keys must be strings")
        keys = sorted(value, key=lambda k: k.encode("utf-16-be"))
        return "{" + ",".join(f"{_encode(k)}:{_encode(value[k])}" for k in keys) + "}"
    raise TypeError(f"cannot put a {type(value).__name__} into an audit event")
