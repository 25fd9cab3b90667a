"""The erasure scan's probes and byte search (issue 13, item 6), without a database."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import pytest

from service.erasure import crypto, probes, scan
from service.erasure.scan import Scanner

SECRET = b"\x5e" * 32
KEY = probes.probe_key(SECRET)
TEXT = "Un film d'une tristesse infinie, où l'été ne finit jamais et la mer reste grise"
OTHER = "a warm and funny film about a dog who learns to surf in the summer"


def _probes(text: str) -> dict[str, Any]:
    p = probes.text_probes(KEY, text)
    assert p is not None
    return p


def _scanner(**keys: tuple[str, str]) -> Scanner:
    return Scanner(SECRET, {"d/r1": _probes(TEXT)}, keys)


def test_probes_are_keyed_word_shingles() -> None:
    ws = probes.words(TEXT)
    assert ws[:4] == ["un", "film", "d", "une"] and "été" in ws
    assert len(probes.shingles(ws)) == len(ws) - probes.SHINGLE + 1
    assert probes.shingles(["two", "words"]) == ["two words"] and probes.shingles([]) == []
    p = probes.text_probes(KEY, TEXT)
    assert p is not None and p["words"] == probes.SHINGLE
    assert p == probes.text_probes(KEY, TEXT.upper().replace(" ", "  "))
    other = probes.text_probes(probes.probe_key(b"\x01" * 32), TEXT)
    assert other is not None and not set(p["digests"]) & set(other["digests"])
    digests = p["digests"]
    assert all(len(d) == 16 for d in digests)  # 64-bit digests, hex: no word of the text
    assert not any(w in "".join(digests) for w in ws if len(w) > 3)


@pytest.mark.parametrize(
    "planted",
    [
        TEXT.encode(),
        json.dumps({"text": TEXT}).encode(),  # \u00e9 escapes
        json.dumps({"text": TEXT}, ensure_ascii=False).encode("utf-8"),
        b"\x00\x17" + TEXT.upper().encode() + b"\xff\x00",
    ],
    ids=["raw", "json-ascii", "json-utf8", "binary-around"],
)
def test_a_planted_copy_is_found_however_it_is_encoded(planted: bytes) -> None:
    blob = secrets.token_bytes(5000) + planted + secrets.token_bytes(5000)
    (found,) = _scanner().scan_blobs("somewhere", [blob])
    assert found.where == "somewhere" and found.subject == "d/r1" and found.what == "text"
    assert "somewhere: text of erased record d/r1" in str(found)


def test_unrelated_text_and_a_few_shared_words_are_not_remnants() -> None:
    s = _scanner()
    assert s.scan_blobs("x", [OTHER.encode() * 3]) == []
    # Two shingles of the record (fewer than probes.MIN_MATCHES) are not enough.
    words = probes.words(TEXT)
    two = " ".join(words[:5])
    assert s.scan_blobs("x", [two.encode()]) == []
    three = " ".join(words[:6])
    assert [r.subject for r in s.scan_blobs("x", [three.encode()])] == ["d/r1"]


def test_short_texts_need_their_only_shingle() -> None:
    assert _probes("Loved it!")["words"] == 2 and probes.text_probes(KEY, "?!") is None
    s = Scanner(SECRET, {"d/short": _probes("Loved it!")}, {})
    assert [r.subject for r in s.scan_blobs("x", [b'{"text":"loved  it"}'])] == ["d/short"]
    assert s.scan_blobs("x", [b"loved"]) == []


def test_a_wrapped_key_is_found_at_any_offset_and_confirmed_by_its_hash() -> None:
    wrapped = crypto.wrap(secrets.token_bytes(32), "k1", crypto.new_data_key())
    assert len(wrapped) == crypto.WRAPPED_BYTES
    s = _scanner(k1=probes.key_probe(wrapped))
    for offset in range(9):
        blob = secrets.token_bytes(offset) + wrapped + secrets.token_bytes(100)
        assert [str(r) for r in s.scan_blobs("f", [blob])] == [
            "f: destroyed data key k1 (wrapped bytes)"
        ]
    # The anchor alone (the stored probe names only 8 bytes of the nonce) is no hit.
    changed = wrapped[:-1] + bytes([wrapped[-1] ^ 1])
    assert s.scan_blobs("f", [changed]) == []
    assert s.scan_blobs("f", [wrapped[: probes.ANCHOR_BYTES]]) == []


def test_files_are_read_in_overlapping_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scan, "CHUNK", 4096)
    monkeypatch.setattr(scan, "OVERLAP", 1024)
    wrapped = crypto.wrap(secrets.token_bytes(32), "k1", crypto.new_data_key())
    path = tmp_path / "big.bin"
    # Both remnants straddle a chunk border.
    path.write_bytes(
        secrets.token_bytes(4096 - 30)
        + wrapped
        + secrets.token_bytes(4096 - 60 - 30)
        + TEXT.encode()
        + secrets.token_bytes(3000)
    )
    found = _scanner(k1=probes.key_probe(wrapped)).scan_file(path, "big.bin")
    assert sorted(r.what for r in found) == ["data key", "text"]
