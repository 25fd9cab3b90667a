"""Placement: keyed, stable, subject-grouped, near-uniform."""

from __future__ import annotations

import hashlib
import hmac
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sharding import (
    AddressOutOfRangeError,
    InvalidParameterError,
    Placement,
    ShardingError,
    SliceAddress,
    balance,
    subject_key,
)

secrets = st.binary(min_size=1, max_size=32)
ids = st.text(min_size=1, max_size=40)
sizes = st.integers(min_value=1, max_value=64)


@given(secret=secrets, subject=ids)
def test_subject_key_is_hex_hmac_sha256(secret: bytes, subject: str) -> None:
    key = subject_key(secret, subject)
    assert key == hmac.new(secret, subject.encode("utf-8"), hashlib.sha256).hexdigest()
    assert len(key) == 64


def test_subject_key_differs_by_secret_and_subject() -> None:
    assert subject_key(b"a", "alice") != subject_key(b"b", "alice")
    assert subject_key(b"a", "alice") != subject_key(b"a", "bob")


@given(secret=secrets, n_shards=sizes, n_slices=sizes, record=ids, subject=st.none() | ids)
def test_place_is_deterministic_and_in_range(
    secret: bytes, n_shards: int, n_slices: int, record: str, subject: str | None
) -> None:
    address = Placement(secret, n_shards, n_slices).place(record, subject)
    again = Placement(secret, n_shards, n_slices).place(record, subject)
    assert address == again
    assert 0 <= address.shard < n_shards
    assert 0 <= address.slice < n_slices


@given(secret=secrets, n_shards=sizes, n_slices=sizes, subject=ids, records=st.lists(ids))
def test_records_of_one_subject_share_one_cell(
    secret: bytes, n_shards: int, n_slices: int, subject: str, records: list[str]
) -> None:
    placement = Placement(secret, n_shards, n_slices)
    cells = {placement.place(record, subject) for record in ["r0", *records]}
    assert len(cells) == 1


@given(secret=secrets, name=ids)
def test_subject_and_record_namespaces_differ(secret: bytes, name: str) -> None:
    # 2**32 x 2**32 cells: an accidental collision has probability 2**-64.
    placement = Placement(secret, 2**32, 2**32)
    assert placement.place(name, name) != placement.place(name, None)


@given(
    secret=secrets,
    kept=st.lists(ids, min_size=1, max_size=20, unique=True),
    others=st.lists(ids, max_size=20),
)
def test_placement_is_stable_when_other_records_come_and_go(
    secret: bytes, kept: list[str], others: list[str]
) -> None:
    placement = Placement(secret, 7, 5)
    before = {r: placement.place(r, None) for r in kept}
    # Placing a different population in between must not move anyone.
    for other in others:
        placement.place(other, None)
    widened = {r: placement.place(r, None) for r in [*kept, *others]}
    assert {r: widened[r] for r in kept} == before
    narrowed = {r: placement.place(r, None) for r in kept[: len(kept) // 2 + 1]}
    assert all(narrowed[r] == before[r] for r in narrowed)


@given(
    pair=st.lists(secrets, min_size=2, max_size=2, unique=True),
    records=st.lists(ids, min_size=40, max_size=60, unique=True),
)
def test_different_secrets_give_different_placements(pair: list[bytes], records: list[str]) -> None:
    first, second = (Placement(secret, 8, 8) for secret in pair)
    # All 40+ records agreeing by chance has probability < 64**-40.
    assert [first.place(r, None) for r in records] != [second.place(r, None) for r in records]


def test_balance_on_random_ids_is_near_uniform() -> None:
    rng = random.Random(20240611)
    placement = Placement(b"balance-secret", 5, 6)
    addresses = [placement.place(f"{rng.getrandbits(128):032x}", None) for _ in range(20_000)]
    report = balance(addresses, 5, 6)
    assert report.total == 20_000
    assert sum(report.shard_totals) == 20_000
    assert report.imbalance < 1.15
    assert report.chi2_pvalue > 1e-3
    assert report.min_slice <= 20_000 / 30 <= report.max_slice


@given(cells=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 4)), max_size=200))
def test_balance_counts_cells(cells: list[tuple[int, int]]) -> None:
    report = balance((SliceAddress(s, j) for s, j in cells), 4, 5)
    for s in range(4):
        for j in range(5):
            assert report.counts[s][j] == cells.count((s, j))
        assert report.shard_totals[s] == sum(report.counts[s])
    flat = [c for row in report.counts for c in row]
    assert (report.min_slice, report.max_slice) == (min(flat), max(flat))
    assert 0.0 <= report.chi2_pvalue <= 1.0
    if cells:
        assert report.imbalance == pytest.approx(max(flat) / (len(cells) / 20))


def test_balance_edge_cases() -> None:
    empty = balance([], 2, 3)
    assert (empty.imbalance, empty.chi2_pvalue, empty.total) == (1.0, 1.0, 0)
    single = balance([SliceAddress(0, 0)] * 3, 1, 1)
    assert (single.imbalance, single.chi2_pvalue) == (1.0, 1.0)
    with pytest.raises(AddressOutOfRangeError):
        balance([SliceAddress(2, 0)], 2, 3)
    with pytest.raises(AddressOutOfRangeError):
        balance([SliceAddress(0, 3)], 2, 3)


@pytest.mark.parametrize(
    ("secret", "n_shards", "n_slices"),
    [(b"", 2, 2), ("text", 2, 2), (b"k", 0, 2), (b"k", 2, 0), (b"k", True, 2), (b"k", 2.0, 2)],
)
def test_bad_placement_config_raises(secret: object, n_shards: object, n_slices: object) -> None:
    with pytest.raises(InvalidParameterError):
        Placement(secret, n_shards, n_slices)  # type: ignore[arg-type]


def test_bad_ids_raise() -> None:
    placement = Placement(b"k", 2, 2)
    with pytest.raises(ShardingError):
        placement.place("", None)
    with pytest.raises(ShardingError):
        placement.place("r", "")
    with pytest.raises(ShardingError):
        subject_key(b"", "alice")
    with pytest.raises(ShardingError):
        subject_key(b"k", "")
    with pytest.raises(ValueError):
        SliceAddress(-1, 0)


def test_secret_is_not_in_repr() -> None:
    assert "hunter2" not in repr(Placement(b"hunter2", 2, 2))
