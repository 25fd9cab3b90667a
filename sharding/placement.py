"""Subject-keyed placement of records into (shard, slice) cells.

Invariants:

* A record's cell depends only on the secret and on its own ids (subject id if it has
  one, else record id), never on other records, so adding or removing records never
  moves anyone else.
* All records of one data subject land in the same cell, so one erasure request cuts
  one slice of one shard.
* Subject ids and record ids are hashed in separate namespaces: subject ``"x"`` and
  record ``"x"`` are unrelated.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass, field

from sharding.errors import AddressOutOfRangeError, InvalidParameterError
from sharding.validation import as_int

_SUBJECT_NAMESPACE = b"subject:"
_RECORD_NAMESPACE = b"record:"


def _check_secret(secret: bytes) -> None:
    if not isinstance(secret, bytes) or not secret:
        raise InvalidParameterError("secret must be non-empty bytes")


def _check_id(name: str, value: str) -> None:
    if not isinstance(value, str) or not value:
        raise InvalidParameterError(f"{name} must be a non-empty str")


def subject_key(secret: bytes, subject_id: str) -> str:
    """Return the hex HMAC-SHA256 of ``subject_id`` (UTF-8) under ``secret``.

    This 64-character key is what gets stored instead of the raw subject id. It is a
    different value from the digest :meth:`Placement.place` uses (that one is
    namespaced), so a stored key does not reveal a placement digest.
    """
    _check_secret(secret)
    _check_id("subject_id", subject_id)
    return hmac.new(secret, subject_id.encode("utf-8"), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class SliceAddress:
    """One cell of the layout: 0-based ``shard`` and 0-based ``slice`` within it."""

    shard: int
    slice: int

    def __post_init__(self) -> None:
        as_int("shard", self.shard, minimum=0)
        as_int("slice", self.slice, minimum=0)


@dataclass(frozen=True)
class Placement:
    """Keyed placement into ``n_shards`` x ``n_slices`` cells.

    The shard comes from digest bytes 0..7 and the slice from bytes 8..15 (big-endian,
    reduced modulo the count), so the two coordinates are independent. The modulo bias
    is below 2**-40 for any realistic count. ``secret`` is kept out of ``repr``.
    """

    secret: bytes = field(repr=False)
    n_shards: int
    n_slices: int

    def __post_init__(self) -> None:
        _check_secret(self.secret)
        as_int("n_shards", self.n_shards, minimum=1)
        as_int("n_slices", self.n_slices, minimum=1)

    def place(self, record_id: str, subject_id: str | None) -> SliceAddress:
        """Return the cell of a record.

        Records with a ``subject_id`` are placed by the subject alone (``record_id``
        is then only checked, not hashed); records without one by their record id.
        """
        _check_id("record_id", record_id)
        if subject_id is None:
            message = _RECORD_NAMESPACE + record_id.encode("utf-8")
        else:
            _check_id("subject_id", subject_id)
            message = _SUBJECT_NAMESPACE + subject_id.encode("utf-8")
        digest = hmac.new(self.secret, message, hashlib.sha256).digest()
        shard = int.from_bytes(digest[0:8], "big") % self.n_shards
        slice_ = int.from_bytes(digest[8:16], "big") % self.n_slices
        return SliceAddress(shard=shard, slice=slice_)


@dataclass(frozen=True)
class BalanceReport:
    """How evenly records spread over cells.

    ``counts[s][j]`` is the number of records in shard ``s``, slice ``j``;
    ``shard_totals[s]`` its row sum. ``min_slice``/``max_slice`` are the smallest and
    largest cell counts, ``imbalance`` is ``max_slice / mean cell count`` (1.0 when
    perfectly even and, by convention, when there are no records), and ``chi2_pvalue``
    is the chi-square goodness-of-fit p-value against a uniform spread over cells
    (1.0 when there are no records or only one cell).
    """

    counts: tuple[tuple[int, ...], ...]
    shard_totals: tuple[int, ...]
    min_slice: int
    max_slice: int
    imbalance: float
    chi2_pvalue: float

    @property
    def total(self) -> int:
        """Number of records counted."""
        return sum(self.shard_totals)


def balance(addresses: Iterable[SliceAddress], n_shards: int, n_slices: int) -> BalanceReport:
    """Count ``addresses`` per cell of an ``n_shards`` x ``n_slices`` layout.

    Raises :class:`~sharding.errors.AddressOutOfRangeError` for an address outside it.
    """
    n_shards = as_int("n_shards", n_shards, minimum=1)
    n_slices = as_int("n_slices", n_slices, minimum=1)
    grid = [[0] * n_slices for _ in range(n_shards)]
    for address in addresses:
        if not (0 <= address.shard < n_shards and 0 <= address.slice < n_slices):
            raise AddressOutOfRangeError(f"{address!r} is outside a {n_shards} x {n_slices} layout")
        grid[address.shard][address.slice] += 1
    flat = [c for row in grid for c in row]
    total = sum(flat)
    if total == 0:
        imbalance, pvalue = 1.0, 1.0
    else:
        from scipy.stats import chisquare  # type: ignore[import-untyped]  # (slow import)

        imbalance = max(flat) / (total / len(flat))
        pvalue = 1.0 if len(flat) == 1 else float(chisquare(flat).pvalue)
    return BalanceReport(
        counts=tuple(tuple(row) for row in grid),
        shard_totals=tuple(sum(row) for row in grid),
        min_slice=min(flat),
        max_slice=max(flat),
        imbalance=imbalance,
        chi2_pvalue=pvalue,
    )
