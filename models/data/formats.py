"""Row readers for the import formats: physical lines in, ``RawRow`` out.

This module knows file syntax (UTF-8, CSV quoting, one JSON object per line) and which
columns exist; what the values mean is ``importer``'s job.  Everything streams: each
reader pulls one line at a time, so a large file is read once.

Line numbers are physical and 1-based.  Lines are split on ``"\\n"`` only, so Unicode
line separators inside a text field never shift them; a CSV record spanning several
lines (quoted newlines) is reported at the line where it starts.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from models.data.errors import DataError
from models.errors import ModelsError

COLUMNS = ("record_id", "subject_id", "text", "features", "label")
CONTENT_COLUMNS = ("text", "features")
REQUIRED_COLUMNS = ("record_id", "label")

Lines = Iterable[str] | Iterable[bytes] | str | bytes


@dataclass(frozen=True)
class RawRow:
    """One record as read: raw values keyed by column, and its starting line."""

    line: int
    fields: Mapping[str, object]


def decoded_lines(lines: Lines, *, source: str) -> Iterator[str]:
    """Yield ``lines`` as ``str`` with endings kept, decoding bytes as strict UTF-8.

    A whole ``str``/``bytes`` body is split on ``"\\n"``; a leading byte-order mark is
    dropped.  Undecodable input raises ``DataError`` naming its line.
    """
    if isinstance(lines, bytes):
        return _decode(io.BytesIO(lines), source=source)
    if isinstance(lines, str):
        return _decode(io.StringIO(lines, newline="\n"), source=source)
    return _decode(lines, source=source)


def _decode(lines: Iterable[str | bytes], *, source: str) -> Iterator[str]:
    for number, raw in enumerate(lines, start=1):
        if isinstance(raw, bytes):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(
                    f"not valid UTF-8 (byte {exc.start + 1} of the line)",
                    source=source,
                    line=number,
                ) from None
        else:
            line = raw
        yield line.removeprefix("\ufeff") if number == 1 else line


def _check_header(header: list[str], *, source: str) -> None:
    def fail(message: str, column: str | None = None) -> DataError:
        return DataError(message, source=source, line=1, column=column)

    for column in header:
        if column not in COLUMNS:
            raise fail(f'unknown column "{column}" (expected {", ".join(COLUMNS)})', column)
    if len(set(header)) != len(header):
        raise fail(f"duplicate column names in header: {', '.join(header)}")
    for column in REQUIRED_COLUMNS:
        if column not in header:
            raise fail(f'missing column "{column}"', column)
    content = [c for c in CONTENT_COLUMNS if c in header]
    if len(content) != 1:
        raise fail('the header needs exactly one of the columns "text" or "features"')


def read_csv_rows(lines: Iterator[str], *, source: str) -> Iterator[RawRow]:
    """Yield rows of a CSV file whose first line is the header; blank lines are skipped."""
    reader = csv.reader(lines, strict=True)
    consumed = 0  # physical lines the reader has taken so far
    try:
        header = next(reader, None)
        while header == []:  # blank lines before the header
            consumed = reader.line_num
            header = next(reader, None)
        if header is None:
            raise DataError("empty file: no header and no records", source=source)
        if consumed:
            raise DataError("the header must be on the first line", source=source, line=1)
        header = [column.strip() for column in header]
        _check_header(header, source=source)
        consumed = reader.line_num
        while True:
            start = consumed + 1
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise DataError(f"malformed CSV: {exc}", source=source, line=start) from None
            consumed = reader.line_num
            if not row:
                continue
            if len(row) != len(header):
                raise DataError(
                    f"expected {len(header)} fields, found {len(row)}", source=source, line=start
                )
            yield RawRow(line=start, fields=dict(zip(header, row, strict=True)))
    except csv.Error as exc:  # only the header can get here
        raise DataError(f"malformed CSV header: {exc}", source=source, line=1) from None


class _DuplicateKeyError(ModelsError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    # json.loads would silently keep the last of two equal keys; that hides typos.
    value = dict(pairs)
    if len(value) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKeyError(key)
            seen.add(key)
    return value


def read_jsonl_rows(lines: Iterator[str], *, source: str) -> Iterator[RawRow]:
    """Yield one row per non-blank line, each a JSON object with known keys."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line, object_pairs_hook=_unique_keys)
        except json.JSONDecodeError as exc:
            message = f"malformed JSON: {exc.msg} at column {exc.colno}"
            raise DataError(message, source=source, line=number) from None
        except _DuplicateKeyError as exc:
            message = f'duplicate key "{exc.key}" in JSON object'
            raise DataError(message, source=source, line=number, column=exc.key) from None
        if not isinstance(value, dict):
            raise DataError(
                f"expected a JSON object, found {type(value).__name__}", source=source, line=number
            )
        for key in value:
            if key not in COLUMNS:
                raise DataError(
                    f'unknown key "{key}" (expected {", ".join(COLUMNS)})',
                    source=source,
                    line=number,
                    column=key,
                )
        yield RawRow(line=number, fields=value)
