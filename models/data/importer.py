"""Import a dataset from a CSV or JSON Lines file, or from an uploaded body.

Columns (CSV header / JSON keys): ``record_id``, optional ``subject_id`` (empty or null
means none), exactly one of ``text`` or ``features``, and ``label``.

* ``features``: in CSV a JSON array (``[0.1, 2]``) or space-separated numbers; in JSONL a
  list of numbers.  All finite, non-empty, one length per file.
* ``text`` and ids are stripped of surrounding whitespace; blank text is an error.
* ``label``: a non-negative int or a string.  With ``label_names`` given, a string equal
  to a name maps to its index, and an integer (or digit string) is taken as the index.
  Without, all-integer labels get names ``"0"..str(max)``; otherwise the names are the
  sorted distinct strings.

The first bad row raises ``DataError`` with its source and physical line; a call either
returns a complete ``Dataset`` or raises, and keeps no state between calls.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from models.data.errors import DataError
from models.data.fields import (
    FieldError,
    is_digits,
    parse_features,
    parse_identifier,
    parse_label,
    parse_text,
)
from models.data.formats import (
    CONTENT_COLUMNS,
    Lines,
    RawRow,
    decoded_lines,
    read_csv_rows,
    read_jsonl_rows,
)
from models.data.records import Dataset, Record

FORMATS = {"csv": "csv", "jsonl": "jsonl", "ndjson": "jsonl"}
SUFFIXES = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
# Without label_names, integer labels name the classes "0".."max"; a huge label there is
# a mistake (an id in the label column), not a request for a million classes.
MAX_UNNAMED_LABEL = 65_535


def format_for_path(path: Path) -> str:
    """The import format implied by ``path``'s suffix (``DataError`` if none is)."""
    fmt = SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        known = ", ".join(SUFFIXES)
        raise DataError(f"cannot infer the format from the suffix (use {known})", source=str(path))
    return fmt


def import_file(
    path: Path,
    *,
    name: str | None = None,
    label_names: Sequence[str] | None = None,
    format: str | None = None,
) -> Dataset:
    """Read ``path`` in one streaming pass; ``name`` defaults to the file's stem."""
    path = Path(path)
    fmt = format or format_for_path(path)
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise DataError(f"cannot open: {exc.strerror}", source=str(path)) from exc
    with handle:
        try:
            return parse_records(
                handle, fmt=fmt, source=str(path), name=name or path.stem, label_names=label_names
            )
        except OSError as exc:  # a read failing part-way (network mounts, removed media)
            raise DataError(f"cannot read: {exc.strerror}", source=str(path)) from exc


def import_bytes(
    content: bytes,
    *,
    fmt: str,
    source: str = "<upload>",
    name: str | None = None,
    label_names: Sequence[str] | None = None,
) -> Dataset:
    """Parse an in-memory body, e.g. an HTTP upload."""
    return parse_records(content, fmt=fmt, source=source, name=name, label_names=label_names)


def parse_records(
    lines: Lines,
    *,
    fmt: str,
    source: str,
    name: str | None = None,
    label_names: Sequence[str] | None = None,
) -> Dataset:
    """Parse ``lines`` (an iterable of str or bytes lines, or a whole str/bytes body)."""
    normalised = FORMATS.get(fmt.lower())
    if normalised is None:
        raise DataError(f"unknown format {fmt!r} (use {', '.join(FORMATS)})", source=source)
    text_lines = decoded_lines(lines, source=source)
    rows: Iterator[RawRow]
    if normalised == "csv":
        rows = read_csv_rows(text_lines, source=source)
    else:
        rows = read_jsonl_rows(text_lines, source=source)
    builder = _Builder(source=source, label_names=label_names, csv_cells=normalised == "csv")
    for row in rows:
        builder.add(row)
    return builder.finish(name or source)


class _Builder:
    """Validates rows one at a time and assembles the dataset at the end."""

    def __init__(self, *, source: str, label_names: Sequence[str] | None, csv_cells: bool) -> None:
        self.source = source
        self.csv_cells = csv_cells
        self.label_names = None if label_names is None else tuple(label_names)
        if self.label_names is not None and (
            not self.label_names
            or len(set(self.label_names)) != len(self.label_names)
            or not all(isinstance(n, str) and n for n in self.label_names)
        ):
            raise DataError("label_names must be unique non-empty strings", source=source)
        self.name_index = {n: i for i, n in enumerate(self.label_names or ())}
        self.records: list[Record] = []
        self.tokens: list[int | str] = []
        self.first_line: dict[str, int] = {}
        self.kind: tuple[str, int] | None = None  # (kind, line that set it)
        self.width: tuple[int, int] | None = None  # (feature length, line that set it)

    def add(self, row: RawRow) -> None:
        try:
            self.records.append(self._record(row.fields, row.line))
        except FieldError as exc:
            raise DataError(
                exc.message, source=self.source, line=row.line, column=exc.column
            ) from None
        except DataError as exc:  # Record's own invariants, should the parsers miss one
            raise DataError(exc.message, source=self.source, line=row.line) from None

    def _record(self, fields: Mapping[str, object], line: int) -> Record:
        record_id = parse_identifier(fields.get("record_id"), "record_id")
        if record_id is None:
            raise FieldError("missing record_id", "record_id")
        if record_id in self.first_line:
            first = self.first_line[record_id]
            raise FieldError(
                f'duplicate record_id "{record_id}" (first seen on line {first})', "record_id"
            )
        subject_id = parse_identifier(fields.get("subject_id"), "subject_id")
        present = [c for c in CONTENT_COLUMNS if fields.get(c) is not None]
        if len(present) != 1:
            raise FieldError('each record needs exactly one of "text" or "features"')
        kind = present[0]
        self._expect(kind, line)
        text = parse_text(fields["text"]) if kind == "text" else None
        features = (
            parse_features(fields["features"], cell=self.csv_cells) if kind == "features" else None
        )
        if features is not None:
            self._expect_width(len(features), line)
        token = parse_label(fields.get("label"))
        label = self._label(token)
        self.first_line[record_id] = line
        self.tokens.append(token)
        return Record(record_id, subject_id, label, text=text, features=features)

    def _expect(self, kind: str, line: int) -> None:
        if self.kind is None:
            self.kind = (kind, line)
        elif self.kind[0] != kind:
            raise FieldError(
                f"record has {kind}, but the record on line {self.kind[1]} has {self.kind[0]}", kind
            )

    def _expect_width(self, width: int, line: int) -> None:
        if self.width is None:
            self.width = (width, line)
        elif self.width[0] != width:
            expected, first = self.width
            raise FieldError(
                f"features has {width} values, expected {expected} (as on line {first})", "features"
            )

    def _label(self, token: int | str) -> int:
        names = self.label_names
        if names is None:
            if isinstance(token, str) and not is_digits(token):
                return 0  # placeholder: string labels are numbered in finish()
            label = int(token)
            if label > MAX_UNNAMED_LABEL:
                raise FieldError(
                    f"label {label} is too large without label_names (max {MAX_UNNAMED_LABEL})",
                    "label",
                )
            return label
        if isinstance(token, str):
            if token in self.name_index:
                return self.name_index[token]
            if not is_digits(token):
                raise FieldError(
                    f'label "{token}" is not one of the label names {list(names)}', "label"
                )
            token = int(token)
        if token >= len(names):
            raise FieldError(f"label {token} is out of range for {len(names)} label names", "label")
        return token

    def finish(self, name: str) -> Dataset:
        if not self.records:
            raise DataError("empty file: no records", source=self.source)
        records = self.records
        names = self.label_names
        if names is None:
            if all(isinstance(t, int) or is_digits(t) for t in self.tokens):
                names = tuple(str(i) for i in range(max(r.label for r in records) + 1))
            else:
                names = tuple(sorted({str(t) for t in self.tokens}))
                index = {n: i for i, n in enumerate(names)}
                records = [
                    dataclasses.replace(r, label=index[str(t)])
                    for r, t in zip(records, self.tokens, strict=True)
                ]
        return Dataset(name=name, records=tuple(records), label_names=names)
