"""Searching raw bytes (files, database pages) for remnants of erased data.

A :class:`Scanner` holds the probes (``service.erasure.probes``) of every erased record and
destroyed data key. For text it finds the printable runs of a blob (ASCII or UTF-8), splits
them into words and looks each shingle's digest up; for keys it looks for every 8-byte
anchor at every offset (vectorised) and confirms a hit by the SHA-256 of the bytes that
follow. Files are read in chunks that overlap, so a remnant across a chunk border is found.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from service.erasure import crypto, probes

CHUNK = 8 << 20
OVERLAP = 64 << 10  # longer than any shingle's run of text and than a wrapped key
_RUN = re.compile(rb"(?:[\x20-\x7e]|[\xc2-\xf4][\x80-\xbf]{1,3}){8,}")


@dataclass(frozen=True)
class Remnant:
    where: str
    what: str  # "text" or "data key"
    subject: str  # which record, or which key
    matched: int
    of: int

    def __str__(self) -> str:
        if self.what == "text":
            return (
                f"{self.where}: text of erased record {self.subject} "
                f"({self.matched} of its {self.of} probes)"
            )
        return f"{self.where}: destroyed data key {self.subject} (wrapped bytes)"


@dataclass
class _Found:
    texts: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    keys: set[str] = field(default_factory=set)


class Scanner:
    """``records``: label (e.g. ``dataset/record_id``) -> its text probes
    (``probes.text_probes``); ``keys``: key id -> (anchor hex, sha256 hex) of its wrapped
    bytes."""

    def __init__(
        self,
        secret: bytes,
        records: Mapping[str, Mapping[str, Any]],
        keys: Mapping[str, tuple[str, str]],
        *,
        wrapped_len: int = crypto.WRAPPED_BYTES,
    ) -> None:
        self._key = probes.probe_key(secret)
        self._wrapped_len = wrapped_len
        self._records: dict[str, frozenset[str]] = {}
        self._owners: dict[tuple[int, str], list[str]] = defaultdict(list)
        for label, p in records.items():
            size, digests = int(p["words"]), frozenset(p["digests"])
            self._records[label] = digests
            for d in digests:
                self._owners[(size, d)].append(label)
        self._sizes = sorted({size for size, _ in self._owners})
        self._keys: dict[int, list[tuple[str, bytes]]] = defaultdict(list)
        for key_id, (anchor, sha) in keys.items():
            raw = bytes.fromhex(anchor)
            self._keys[int.from_bytes(raw, "little")].append((key_id, bytes.fromhex(sha)))
        self._anchors = np.array(sorted(self._keys), dtype=np.uint64)

    @property
    def empty(self) -> bool:
        return not self._records and not self._keys

    def scan_blobs(self, where: str, blobs: Iterable[bytes]) -> list[Remnant]:
        """Remnants in one place, given as consecutive (possibly overlapping) pieces."""
        found = _Found()
        for blob in blobs:
            self._texts(blob, found)
            self._key_hits(blob, found)
        return self._remnants(where, found)

    def scan_file(self, path: Path, where: str) -> list[Remnant]:
        return self.scan_blobs(where, _chunks(path))

    def _texts(self, blob: bytes, found: _Found) -> None:
        if not self._records:
            return
        for run in _RUN.finditer(blob):
            ws = probes.words(run.group().decode("utf-8", "replace"))
            for size in self._sizes:
                if len(ws) < size:
                    continue
                for shingle in probes.shingles(ws, size):
                    d = probes.digest(self._key, shingle)
                    for label in self._owners.get((size, d), ()):
                        found.texts[label].add(d)

    def _key_hits(self, blob: bytes, found: _Found) -> None:
        if not self._keys or len(blob) < probes.ANCHOR_BYTES:
            return
        for k in range(8):
            count = (len(blob) - k) // 8
            if count <= 0:
                continue
            values = np.frombuffer(blob, dtype="<u8", count=count, offset=k)
            for i in np.nonzero(np.isin(values, self._anchors))[0]:
                at = int(i) * 8 + k
                window = blob[at : at + self._wrapped_len]
                sha = hashlib.sha256(window).digest()
                for key_id, want in self._keys[int(values[i])]:
                    if sha == want:
                        found.keys.add(key_id)

    def _remnants(self, where: str, found: _Found) -> list[Remnant]:
        out = []
        for label, ds in sorted(found.texts.items()):
            total = len(self._records[label])
            if len(ds) >= probes.needed(total):
                out.append(Remnant(where, "text", label, len(ds), total))
        out += [Remnant(where, "data key", k, 1, 1) for k in sorted(found.keys)]
        return out


def _chunks(path: Path) -> Iterator[bytes]:
    """The file in pieces, each starting with the last :data:`OVERLAP` bytes of the one before."""
    with path.open("rb") as fh:
        tail = b""
        while data := fh.read(CHUNK):
            yield tail + data
            tail = data[-OVERLAP:]
