"""Immutable records and datasets, and the digests that identify them.

Invariants (checked on construction, so a ``Dataset`` in hand is always well formed):

* a ``Record`` has exactly one of ``text`` (non-blank str) or ``features`` (non-empty
  tuple of finite numbers); ``record_id`` and ``subject_id`` are non-empty, carry no
  surrounding whitespace and no control characters (so a newline-joined id list is
  unambiguous); ``label`` is a non-negative int indexing ``Dataset.label_names``;
* a ``Dataset`` holds records of one kind, unique ids, and features of one length.

Digests are part of lineage: changing ``record_digest``'s canonical form or
``records_digest``'s join changes every stored hash, so both are pinned by tests.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from models.data.errors import DataError

Kind = Literal["text", "features"]

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_identifier(value: object, what: str) -> str:
    """Return ``value`` if it is a usable id string, else raise ``DataError``."""
    if not isinstance(value, str) or not value:
        raise DataError(f"{what} must be a non-empty string, got {value!r}")
    if value != value.strip() or _CONTROL.search(value):
        raise DataError(f"{what} {value!r} has surrounding whitespace or control characters")
    return value


@dataclass(frozen=True)
class Record:
    """One training example; ``label`` indexes the owning dataset's ``label_names``."""

    record_id: str
    subject_id: str | None
    label: int
    text: str | None = None
    features: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        check_identifier(self.record_id, "record_id")
        if self.subject_id is not None:
            check_identifier(self.subject_id, "subject_id")
        if not isinstance(self.label, int) or isinstance(self.label, bool) or self.label < 0:
            raise DataError(f"record {self.record_id}: label must be an int >= 0")
        if (self.text is None) == (self.features is None):
            raise DataError(f"record {self.record_id}: exactly one of text/features must be set")
        if self.text is not None and (not isinstance(self.text, str) or not self.text.strip()):
            raise DataError(f"record {self.record_id}: text must be a non-blank string")
        if self.features is not None and (
            not isinstance(self.features, tuple)
            or not self.features
            or not all(map(math.isfinite, self.features))
        ):
            raise DataError(
                f"record {self.record_id}: features must be a non-empty tuple of finite numbers"
            )

    @property
    def kind(self) -> Kind:
        return "text" if self.text is not None else "features"


@dataclass(frozen=True)
class Dataset:
    """A named, ordered, immutable collection of records of one kind."""

    name: str
    records: tuple[Record, ...]
    label_names: tuple[str, ...]

    def __post_init__(self) -> None:
        names = self.label_names
        if not names or len(set(names)) != len(names) or not all(names):
            raise DataError(f"dataset {self.name}: label_names must be unique non-empty strings")
        seen: set[str] = set()
        kinds: set[Kind] = set()
        widths: set[int] = set()
        for record in self.records:
            if record.record_id in seen:
                raise DataError(f"dataset {self.name}: duplicate record_id {record.record_id!r}")
            seen.add(record.record_id)
            if record.label >= len(names):
                raise DataError(
                    f"dataset {self.name}: record {record.record_id} has label {record.label}, "
                    f"but there are only {len(names)} label names"
                )
            kinds.add(record.kind)
            if record.features is not None:
                widths.add(len(record.features))
        if len(kinds) > 1:
            raise DataError(f"dataset {self.name}: mixes text and feature records")
        if len(widths) > 1:
            raise DataError(f"dataset {self.name}: feature lengths differ: {sorted(widths)}")

    @property
    def kind(self) -> Kind:
        """``"text"`` or ``"features"``; an empty dataset has no kind (``ValueError``)."""
        if not self.records:
            raise ValueError(f"dataset {self.name} is empty and has no kind")
        return self.records[0].kind

    def __len__(self) -> int:
        return len(self.records)

    def labels(self) -> list[int]:
        return [record.label for record in self.records]

    def record_ids(self) -> list[str]:
        return [record.record_id for record in self.records]

    def split(self, test_size: int, seed: int) -> tuple[Dataset, Dataset]:
        """Return ``(train, test)`` with ``test_size`` records in ``test``.

        Membership depends only on the set of record ids and ``seed`` (ids are sorted,
        then shuffled by ``random.Random(seed)``), never on record order; each part keeps
        this dataset's order.
        """
        if not 0 <= test_size <= len(self):
            raise ValueError(f"test_size must be in [0, {len(self)}], got {test_size}")
        test_ids = set(self._shuffled_ids(seed)[:test_size])
        train = tuple(r for r in self.records if r.record_id not in test_ids)
        test = tuple(r for r in self.records if r.record_id in test_ids)
        return self._derive(":train", train), self._derive(":test", test)

    def split_by_subject(self, test_size: int, seed: int) -> tuple[Dataset, Dataset]:
        """Return ``(train, test)`` with each data subject's records all on one side (a
        record without a subject stands alone), so erasing a subject never takes records
        from both.

        Groups are taken in a seeded order (group keys sorted, then shuffled by
        ``random.Random(seed)``) while they fit in ``test_size``; if that falls short, the
        smallest group left is added when it lands closer to ``test_size`` and leaves
        ``train`` a record. Membership depends only on the records' ids and subjects and
        ``seed``; a dataset without subjects splits exactly as :meth:`split`.
        """
        if not 0 <= test_size <= len(self):
            raise ValueError(f"test_size must be in [0, {len(self)}], got {test_size}")
        groups: dict[tuple[int, str], int] = {}
        for r in self.records:
            groups[_group(r)] = groups.get(_group(r), 0) + 1
        order = sorted(groups)
        random.Random(seed).shuffle(order)
        chosen: set[tuple[int, str]] = set()
        n = 0
        for key in order:
            if n == test_size:
                break
            if n + groups[key] <= test_size:
                chosen.add(key)
                n += groups[key]
        rest = [key for key in order if key not in chosen]
        if n < test_size and rest:
            over = min(rest, key=groups.__getitem__)  # every group left overshoots
            if n + groups[over] - test_size < test_size - n and n + groups[over] < len(self):
                chosen.add(over)
        train = tuple(r for r in self.records if _group(r) not in chosen)
        test = tuple(r for r in self.records if _group(r) in chosen)
        return self._derive(":train", train), self._derive(":test", test)

    def subset(self, n: int, seed: int) -> Dataset:
        """Return ``n`` records chosen like ``split``'s test set, in this dataset's order."""
        if not 0 <= n <= len(self):
            raise ValueError(f"n must be in [0, {len(self)}], got {n}")
        chosen = set(self._shuffled_ids(seed)[:n])
        records = tuple(r for r in self.records if r.record_id in chosen)
        return self._derive(f":subset-{n}-seed{seed}", records)

    def _shuffled_ids(self, seed: int) -> list[str]:
        ids = sorted(self.record_ids())
        random.Random(seed).shuffle(ids)
        return ids

    def _derive(self, suffix: str, records: tuple[Record, ...]) -> Dataset:
        return Dataset(name=self.name + suffix, records=records, label_names=self.label_names)


def _group(record: Record) -> tuple[int, str]:
    """The split group of a record: its subject's, or its own when it has none (the tag
    keeps a subject id from meeting a record id)."""
    return (0, record.record_id) if record.subject_id is None else (1, record.subject_id)


def model_input(source: Record | Mapping[str, object]) -> object:
    """What the backbone reads of a record: its text, or its feature vector.

    ``source`` is a ``Record`` or its stored payload (``{"text": ...}`` or
    ``{"features": [...]}``, as the lineage database keeps it).
    """
    if isinstance(source, Record):
        return source.text if source.text is not None else source.features
    return source["text"] if "text" in source else source["features"]


def record_digest(record: Record) -> str:
    """Hex sha256 of the record's canonical JSON (sorted keys, compact, UTF-8).

    Features are written as floats, so ``(1,)`` and ``(1.0,)`` hash alike.
    """
    canonical = {
        "record_id": record.record_id,
        "subject_id": record.subject_id,
        "label": record.label,
        "text": record.text,
        "features": None if record.features is None else [float(x) for x in record.features],
    }
    blob = json.dumps(
        canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def records_digest(record_ids: Iterable[str]) -> str:
    """Hex sha256 of the sorted ids joined by ``"\\n"``: independent of input order."""
    return hashlib.sha256("\n".join(sorted(record_ids)).encode("utf-8")).hexdigest()
