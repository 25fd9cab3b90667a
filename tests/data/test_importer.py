"""The CSV/JSONL importer: good files, every rejected row, and a round trip."""

from __future__ import annotations

import csv
import io
import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.data import DataError, Dataset, Record, import_bytes, import_file, parse_records

GOOD_CSV = """record_id,subject_id,text,label
r1,alice, Great film ,fresh
r2,,"Two
lines",rotten
r3,bob,Fine,fresh
"""

GOOD_JSONL = """{"record_id": "r1", "subject_id": "alice", "text": "Great film", "label": 1}

{"record_id": "r2", "subject_id": null, "text": "Two\\nlines", "label": 0}
{"record_id": 3, "text": "Fine", "label": 1}
"""


def test_good_csv(tmp_path: Path) -> None:
    path = tmp_path / "reviews.csv"
    path.write_text(GOOD_CSV, encoding="utf-8")
    data = import_file(path)
    assert data.name == "reviews"
    assert data.kind == "text"
    assert data.label_names == ("fresh", "rotten")
    assert data.records == (
        Record("r1", "alice", 0, text="Great film"),
        Record("r2", None, 1, text="Two\nlines"),
        Record("r3", "bob", 0, text="Fine"),
    )
    named = import_file(path, name="rt", label_names=["rotten", "fresh"])
    assert named.name == "rt"
    assert named.labels() == [1, 0, 1]


def test_good_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "reviews.jsonl"
    path.write_text(GOOD_JSONL, encoding="utf-8")
    data = import_file(path, label_names=("neg", "pos"))
    assert data.records == (
        Record("r1", "alice", 1, text="Great film"),
        Record("r2", None, 0, text="Two\nlines"),
        Record("3", None, 1, text="Fine"),
    )
    assert import_file(path).label_names == ("0", "1")
    ndjson = tmp_path / "reviews.ndjson"
    ndjson.write_text(GOOD_JSONL, encoding="utf-8")
    assert import_file(ndjson).records == import_file(path).records


def test_csv_features_as_json_or_space_separated() -> None:
    body = b'record_id,features,label\na,"[0.5, 1, -2e-3]",2\nb,0.25  3 4,0\n'
    data = import_bytes(body, fmt="csv")
    assert data.kind == "features"
    assert data.label_names == ("0", "1", "2")
    assert [r.features for r in data.records] == [(0.5, 1.0, -0.002), (0.25, 3.0, 4.0)]


def test_accepts_streams_lines_and_whole_bodies() -> None:
    expected = import_bytes(GOOD_CSV.encode(), fmt="csv", source="x.csv")
    assert parse_records(io.StringIO(GOOD_CSV, newline=""), fmt="csv", source="x.csv") == expected
    assert parse_records(GOOD_CSV, fmt="CSV", source="x.csv") == expected
    lines = GOOD_CSV.encode().splitlines(keepends=True)
    assert parse_records(lines, fmt="csv", source="x.csv") == expected
    # Windows line ends and a BOM: the quoted newline is data and is kept verbatim.
    crlf = import_bytes(GOOD_CSV.replace("\n", "\r\n").encode("utf-8-sig"), fmt="csv")
    assert [r.text for r in crlf.records] == ["Great film", "Two\r\nlines", "Fine"]


def test_unicode_line_separators_do_not_split_records() -> None:
    body = 'record_id,text,label\na,"one\u2028two\x85three",0\nb,x,\n'.encode()
    with pytest.raises(DataError) as info:
        import_bytes(body, fmt="csv")
    assert info.value.line == 3


CSV_HEADER = "record_id,subject_id,text,label\n"
H = CSV_HEADER
FH = "record_id,features,label\n"


def jl(**fields: object) -> str:
    """One JSON line."""
    return json.dumps(fields) + "\n"


OK = jl(record_id="a", text="x", label=0)

# fmt: off
BAD_FILES = [
    # (case id, format, body, line, column, words in the message)
    ("csv-missing-label", "csv", H + "r1,u,a,0\nr2,u,b,\n", 3, "label", "missing label"),
    ("csv-blank-label", "csv", H + "r1,u,a,  \n", 2, "label", "missing label"),
    ("jsonl-missing-label", "jsonl", OK + jl(record_id="b", text="y"), 2, "label",
     "missing label"),
    ("jsonl-null-label", "jsonl", jl(record_id="a", text="x", label=None), 1, "label",
     "missing label"),
    ("jsonl-bool-label", "jsonl", jl(record_id="a", text="x", label=True), 1, "label",
     "integer or a string"),
    ("jsonl-negative-label", "jsonl", jl(record_id="a", text="x", label=-1), 1, "label",
     "negative"),
    ("csv-huge-int-label", "csv", H + "r1,u,a,123456789\n", 2, "label", "too large"),
    ("csv-duplicate-id", "csv", H + "r1,u,a,0\nr2,u,b,0\nr1,u,c,0\n", 4, "record_id",
     'duplicate record_id "r1" (first seen on line 2)'),
    ("jsonl-duplicate-id", "jsonl", OK + "\n" + jl(record_id=" a ", text="y", label=0), 3,
     "record_id", "first seen on line 1"),
    ("csv-empty-text", "csv", H + "r1,u,a,0\nr2,u,,0\n", 3, "text", "empty text"),
    ("csv-whitespace-text", "csv", H + 'r1,u,"  \t ",0\n', 2, "text", "empty text"),
    ("jsonl-whitespace-text", "jsonl", jl(record_id="a", text=" \n ", label=0), 1, "text",
     "empty text"),
    ("jsonl-text-not-string", "jsonl", jl(record_id="a", text=5, label=0), 1, "text",
     "must be a string"),
    ("csv-unknown-column", "csv", "record_id,text,label,score\nr1,a,0,1\n", 1, "score",
     'unknown column "score"'),
    ("csv-duplicate-column", "csv", "record_id,text,label,label\nr1,a,0,1\n", 1, None,
     "duplicate column"),
    ("jsonl-unknown-key", "jsonl", OK + jl(record_id="b", txt="y", label=0), 2, "txt",
     'unknown key "txt"'),
    ("jsonl-duplicate-key", "jsonl", '{"record_id":"a","text":"x","text":"y","label":0}\n', 1,
     "text", "duplicate key"),
    ("csv-no-id-column", "csv", "subject_id,text,label\nu,a,0\n", 1, "record_id",
     'missing column "record_id"'),
    ("csv-no-label-column", "csv", "record_id,text\nr1,a\n", 1, "label",
     'missing column "label"'),
    ("csv-missing-id", "csv", H + "r1,u,a,0\n ,u,b,0\n", 3, "record_id", "missing record_id"),
    ("jsonl-missing-id", "jsonl", jl(text="x", label=0), 1, "record_id", "missing record_id"),
    ("jsonl-id-not-string", "jsonl", jl(record_id=["a"], text="x", label=0), 1, "record_id",
     "must be a string"),
    ("csv-id-control-char", "csv", H + 'r1,u,a,0\n"r\x012",u,b,0\n', 3, "record_id", "control"),
    ("csv-both-columns", "csv", "record_id,text,features,label\nr1,a,1,0\n", 1, None,
     "exactly one"),
    ("csv-neither-column", "csv", "record_id,subject_id,label\nr1,u,0\n", 1, None,
     "exactly one"),
    ("jsonl-both", "jsonl", jl(record_id="a", text="x", features=[1], label=0), 1, None,
     "exactly one"),
    ("jsonl-neither", "jsonl", OK + jl(record_id="b", label=0), 2, None, "exactly one"),
    ("jsonl-mixed-kinds", "jsonl", OK + jl(record_id="b", features=[1], label=0), 2,
     "features", "line 1 has text"),
    ("csv-features-not-numeric", "csv", FH + "r1,1 2,0\nr2,1 x,0\n", 3, "features",
     "'x' is not a number"),
    ("csv-features-bad-json", "csv", FH + 'r1,"[1, 2",0\n', 2, "features",
     "not a valid JSON array"),
    ("csv-features-json-object", "csv", FH + 'r1,"[{""a"": 1}]",0\n', 2, "features",
     "not a number"),
    ("csv-features-empty", "csv", FH + "r1,,0\n", 2, "features", "empty features"),
    ("csv-features-infinite", "csv", FH + "r1,1 inf,0\n", 2, "features", "not finite"),
    ("jsonl-features-nan", "jsonl", '{"record_id":"a","features":[NaN],"label":0}\n', 1,
     "features", "not finite"),
    ("jsonl-features-string", "jsonl", jl(record_id="a", features=["1"], label=0), 1,
     "features", "not a number"),
    ("jsonl-features-bool", "jsonl", jl(record_id="a", features=[True], label=0), 1,
     "features", "not a number"),
    ("jsonl-features-not-list", "jsonl", jl(record_id="a", features="1 2", label=0), 1,
     "features", "list of numbers"),
    ("csv-features-length", "csv", FH + "r1,1 2,0\nr2,3 4,0\nr3,5,0\n", 4, "features",
     "has 1 values, expected 2 (as on line 2)"),
    ("jsonl-features-length", "jsonl", jl(record_id="a", features=[1, 2], label=0)
     + jl(record_id="b", features=[1, 2, 3], label=0), 2, "features", "expected 2"),
    ("jsonl-malformed", "jsonl", OK + '{"record_id": "b",\n', 2, None, "malformed JSON"),
    ("jsonl-not-object", "jsonl", OK + "[1, 2]\n", 2, None, "expected a JSON object"),
    ("csv-field-count", "csv", H + "r1,u,a,0\nr2,u,b,0,extra\n", 3, None,
     "expected 4 fields, found 5"),
    ("csv-unterminated-quote", "csv", H + 'r1,u,a,0\nr2,u,"open,0\nr3,u,c,0\n', 3, None,
     "malformed CSV"),
    ("csv-junk-after-quote", "csv", H + 'r1,u,"a"b,0\n', 2, None, "malformed CSV"),
    # a record spanning lines 2-4 shifts the next one to line 5
    ("csv-after-multiline", "csv", H + 'r1,u,"a\nb\nc",0\nr2,u,,0\n', 5, "text",
     "empty text"),
    ("csv-multiline-start", "csv", H + 'r1,u,a,0\nr1,u,"b\nc",0\n', 3, "record_id",
     "duplicate"),
    ("csv-blank-lines-count", "csv", H + "r1,u,a,0\n\n\nr2,u,,0\n", 5, "text", "empty text"),
]
# fmt: on


@pytest.mark.parametrize(
    ("fmt", "body", "line", "column", "words"),
    [case[1:] for case in BAD_FILES],
    ids=[case[0] for case in BAD_FILES],
)
def test_bad_rows_name_their_line(
    fmt: str, body: str, line: int, column: str | None, words: str
) -> None:
    source = f"data.{fmt}"
    with pytest.raises(DataError) as info:
        import_bytes(body.encode("utf-8"), fmt=fmt, source=source)
    error = info.value
    assert (error.source, error.line, error.column) == (source, line, column)
    assert words in error.message
    assert str(error).startswith(f"{source} line {line}: ")


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_non_utf8_names_its_line(fmt: str) -> None:
    rows = {
        "csv": [b"record_id,text,label\n", b"r1,ok,0\n", b"r2,caf\xe9,0\n"],
        "jsonl": [
            b'{"record_id":"a","text":"x","label":0}\n',
            b'{"record_id":"b","text":"\xff"}\n',
        ],
    }[fmt]
    with pytest.raises(DataError, match="not valid UTF-8") as info:
        import_bytes(b"".join(rows), fmt=fmt, source="up")
    assert info.value.line == len(rows)


@pytest.mark.parametrize(
    ("fmt", "body"),
    [
        ("csv", b""),
        ("csv", b"\n\n"),
        ("csv", b"record_id,text,label\n"),
        ("jsonl", b""),
        ("jsonl", b"\n  \n"),
    ],
)
def test_empty_files_are_rejected(fmt: str, body: bytes) -> None:
    with pytest.raises(DataError, match="empty file") as info:
        import_bytes(body, fmt=fmt, source="empty")
    assert info.value.line is None


def test_label_names_mapping() -> None:
    body = CSV_HEADER + "r1,u,a,pos\nr2,u,b,0\nr3,u,c,neg\n"
    data = import_bytes(body.encode(), fmt="csv", label_names=["neg", "pos"])
    assert data.labels() == [1, 0, 0]
    with pytest.raises(DataError, match="not one of the label names") as info:
        import_bytes(body.encode(), fmt="csv", source="d.csv", label_names=["neg", "neutral"])
    assert (info.value.line, info.value.column) == (2, "label")
    with pytest.raises(DataError, match="out of range") as info:
        import_bytes((CSV_HEADER + "r1,u,a,2\n").encode(), fmt="csv", label_names=["a", "b"])
    assert info.value.line == 2
    with pytest.raises(DataError, match="label_names"):
        import_bytes(GOOD_CSV.encode(), fmt="csv", label_names=["a", "a"])


def test_label_names_inferred() -> None:
    ints = import_bytes((CSV_HEADER + "r1,u,a,3\nr2,u,b,1\n").encode(), fmt="csv")
    assert ints.label_names == ("0", "1", "2", "3")
    assert ints.labels() == [3, 1]
    mixed = import_bytes((CSV_HEADER + "r1,u,a,2\nr2,u,b,b\nr3,u,c,a\n").encode(), fmt="csv")
    assert mixed.label_names == ("2", "a", "b")
    assert mixed.labels() == [0, 2, 1]


def test_file_level_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="cannot open"):
        import_file(tmp_path / "missing.csv")
    odd = tmp_path / "data.txt"
    odd.write_text('{"record_id": "a", "text": "x", "label": 0}\n', encoding="utf-8")
    with pytest.raises(DataError, match="infer the format"):
        import_file(odd)
    assert import_file(odd, format="jsonl").record_ids() == ["a"]
    with pytest.raises(DataError, match="unknown format"):
        import_bytes(b"", fmt="xml")


def test_a_failed_import_leaves_nothing_behind(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(CSV_HEADER + "r1,u,a,0\nr1,u,b,0\n", encoding="utf-8")
    with pytest.raises(DataError):
        import_file(bad)
    good = tmp_path / "good.csv"
    good.write_text(CSV_HEADER + "r1,u,a,0\n", encoding="utf-8")
    assert import_file(good).record_ids() == ["r1"]


# --- round trip -----------------------------------------------------------------

_chars = st.characters(codec="utf-8", exclude_categories=("Cc", "Cs"))
identifiers = st.text(_chars, min_size=1, max_size=10).map(str.strip).filter(bool)
texts = st.text(st.characters(codec="utf-8"), min_size=1, max_size=40)
texts = texts.map(str.strip).filter(bool)
finite = st.floats(allow_nan=False, allow_infinity=False)


@st.composite
def datasets(draw: st.DrawFn, kind: str) -> Dataset:
    label_names = tuple(draw(st.lists(identifiers, min_size=1, max_size=4, unique=True)))
    ids = draw(st.lists(identifiers, min_size=1, max_size=12, unique=True))
    width = draw(st.integers(1, 5))
    records = []
    for record_id in ids:
        subject = draw(st.none() | identifiers)
        label = draw(st.integers(0, len(label_names) - 1))
        if kind == "text":
            records.append(Record(record_id, subject, label, text=draw(texts)))
        else:
            values = tuple(draw(st.lists(finite, min_size=width, max_size=width)))
            records.append(Record(record_id, subject, label, features=values))
    return Dataset(name="trip", records=tuple(records), label_names=label_names)


def write_csv(data: Dataset, path: Path, *, json_features: bool) -> None:
    content = "text" if data.kind == "text" else "features"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["record_id", "subject_id", content, "label"])
        for r in data.records:
            if r.features is None:
                value = r.text
            elif json_features:
                value = json.dumps(r.features)
            else:
                value = " ".join(map(repr, r.features))
            writer.writerow([r.record_id, r.subject_id or "", value, data.label_names[r.label]])


def write_jsonl(data: Dataset, path: Path) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for r in data.records:
            row: dict[str, object] = {"record_id": r.record_id, "label": data.label_names[r.label]}
            if r.subject_id is not None:
                row["subject_id"] = r.subject_id
            row["text" if r.features is None else "features"] = r.text or list(r.features or ())
            handle.write(json.dumps(row) + "\n")


@settings(max_examples=60, deadline=None)
@given(
    data=st.sampled_from(["text", "features"]).flatmap(datasets),
    fmt=st.sampled_from(["csv", "jsonl"]),
    json_features=st.booleans(),
)
def test_round_trip(data: Dataset, fmt: str, json_features: bool) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"trip.{fmt}"
        if fmt == "csv":
            write_csv(data, path, json_features=json_features)
        else:
            write_jsonl(data, path)
        assert import_file(path, name="trip", label_names=data.label_names) == data


@settings(max_examples=30, deadline=None)
@given(labels=st.lists(st.integers(0, 20), min_size=1, max_size=10))
def test_round_trip_integer_labels(labels: list[int]) -> None:
    body = "".join(
        json.dumps({"record_id": f"r{i}", "text": "t", "label": label}) + "\n"
        for i, label in enumerate(labels)
    )
    data = import_bytes(body.encode(), fmt="jsonl")
    assert data.labels() == labels
    assert data.label_names == tuple(str(i) for i in range(max(labels) + 1))
