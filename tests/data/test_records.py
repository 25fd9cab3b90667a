"""Records, datasets, deterministic splits and the lineage digests."""

from __future__ import annotations

import hashlib
import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.data import DataError, Dataset, Record, record_digest, records_digest


def make_dataset(n: int, *, name: str = "toy", reverse: bool = False) -> Dataset:
    records = [Record(f"r{i:03d}", f"s{i % 3}", i % 2, text=f"text {i}") for i in range(n)]
    if reverse:
        records.reverse()
    return Dataset(name=name, records=tuple(records), label_names=("neg", "pos"))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"record_id": "r", "subject_id": None, "label": 0},  # neither text nor features
        {"record_id": "r", "subject_id": None, "label": 0, "text": "a", "features": (1.0,)},
        {"record_id": "r", "subject_id": None, "label": 0, "text": "  "},
        {"record_id": "r", "subject_id": None, "label": 0, "features": ()},
        {"record_id": "r", "subject_id": None, "label": 0, "features": (float("nan"),)},
        {"record_id": "r", "subject_id": None, "label": 0, "features": [1.0]},
        {"record_id": "r", "subject_id": None, "label": -1, "text": "a"},
        {"record_id": "r", "subject_id": None, "label": True, "text": "a"},
        {"record_id": "", "subject_id": None, "label": 0, "text": "a"},
        {"record_id": " r", "subject_id": None, "label": 0, "text": "a"},
        {"record_id": "r\n1", "subject_id": None, "label": 0, "text": "a"},
        {"record_id": "r", "subject_id": "", "label": 0, "text": "a"},
    ],
)
def test_record_rejects_invalid_fields(kwargs: dict[str, object]) -> None:
    with pytest.raises(DataError):
        Record(**kwargs)  # type: ignore[arg-type]


def test_dataset_rejects_inconsistent_records() -> None:
    a = Record("a", None, 0, text="x")
    with pytest.raises(DataError, match="duplicate record_id"):
        Dataset("d", (a, a), ("n",))
    with pytest.raises(DataError, match="label"):
        Dataset("d", (Record("b", None, 1, text="x"),), ("n",))
    with pytest.raises(DataError, match="mixes"):
        Dataset("d", (a, Record("b", None, 0, features=(1.0,))), ("n",))
    with pytest.raises(DataError, match="feature lengths"):
        feats = (Record("a", None, 0, features=(1.0,)), Record("b", None, 0, features=(1.0, 2.0)))
        Dataset("d", feats, ("n",))
    with pytest.raises(DataError, match="label_names"):
        Dataset("d", (a,), ("n", "n"))


def test_kind_len_labels() -> None:
    data = make_dataset(5)
    assert data.kind == "text"
    assert len(data) == 5
    assert data.labels() == [0, 1, 0, 1, 0]
    features = Dataset("f", (Record("a", None, 0, features=(0.5, 1.0)),), ("n",))
    assert features.kind == "features"
    with pytest.raises(ValueError, match="empty"):
        _ = Dataset("e", (), ("n",)).kind


def test_split_is_deterministic_disjoint_and_complete() -> None:
    data = make_dataset(50)
    train, test = data.split(10, seed=7)
    again_train, again_test = data.split(10, seed=7)
    assert (train, test) == (again_train, again_test)
    assert (len(train), len(test)) == (40, 10)
    assert set(train.record_ids()).isdisjoint(test.record_ids())
    assert set(train.record_ids()) | set(test.record_ids()) == set(data.record_ids())
    assert (train.name, test.name) == ("toy:train", "toy:test")
    assert train.label_names == test.label_names == data.label_names
    # each part keeps the dataset's order
    assert train.record_ids() == sorted(train.record_ids())
    assert data.split(10, seed=8)[1] != test


def test_split_membership_ignores_record_order() -> None:
    forward = make_dataset(30).split(7, seed=3)[1]
    backward = make_dataset(30, reverse=True).split(7, seed=3)[1]
    assert set(forward.record_ids()) == set(backward.record_ids())


def test_split_is_pinned() -> None:
    # Splits define which records a stored model was trained on: they must not drift.
    assert make_dataset(10).split(3, seed=0)[1].record_ids() == ["r001", "r007", "r008"]


def test_split_bounds() -> None:
    data = make_dataset(4)
    assert len(data.split(0, seed=1)[1]) == 0
    assert len(data.split(4, seed=1)[0]) == 0
    for bad in (-1, 5):
        with pytest.raises(ValueError, match="test_size"):
            data.split(bad, seed=1)


def test_subset_is_deterministic_and_matches_split_selection() -> None:
    data = make_dataset(40)
    subset = data.subset(12, seed=5)
    assert subset == data.subset(12, seed=5)
    assert len(subset) == 12
    assert subset.name == "toy:subset-12-seed5"
    assert set(subset.record_ids()) == set(data.split(12, seed=5)[1].record_ids())
    assert set(subset.record_ids()) <= set(data.record_ids())
    with pytest.raises(ValueError, match="n must be"):
        data.subset(41, seed=5)


@given(n=st.integers(0, 60), fraction=st.floats(0, 1), seed=st.integers(0, 2**32))
def test_split_properties(n: int, fraction: float, seed: int) -> None:
    data = make_dataset(n)
    test_size = round(n * fraction)
    train, test = data.split(test_size, seed)
    assert len(test) == test_size
    assert len(train) + len(test) == n
    assert not set(train.record_ids()) & set(test.record_ids())


def test_record_digest_is_pinned_and_canonical() -> None:
    record = Record("r1", "alice", 1, text="héllo")
    expected = hashlib.sha256(
        '{"features":null,"label":1,"record_id":"r1","subject_id":"alice","text":"héllo"}'.encode()
    ).hexdigest()
    assert record_digest(record) == expected
    assert record_digest(Record("f", None, 0, features=(1, 2))) == record_digest(
        Record("f", None, 0, features=(1.0, 2.0))
    )


@pytest.mark.parametrize(
    "other",
    [
        Record("r2", "alice", 1, text="héllo"),
        Record("r1", None, 1, text="héllo"),
        Record("r1", "alice", 0, text="héllo"),
        Record("r1", "alice", 1, text="hello"),
    ],
)
def test_record_digest_sees_every_field(other: Record) -> None:
    assert record_digest(other) != record_digest(Record("r1", "alice", 1, text="héllo"))


def test_records_digest_is_order_independent_and_pinned() -> None:
    assert records_digest(["b", "a", "c"]) == records_digest(iter(["c", "a", "b"]))
    assert records_digest(["a", "b"]) == hashlib.sha256(b"a\nb").hexdigest()
    assert records_digest(["a"]) != records_digest(["a", "b"])


def test_data_error_renders_location_and_pickles() -> None:
    error = DataError('duplicate record_id "r3"', source="data.csv", line=7, column="record_id")
    assert str(error) == 'data.csv line 7: duplicate record_id "r3"'
    assert isinstance(error, ValueError)
    copy = pickle.loads(pickle.dumps(error))
    assert (str(copy), copy.source, copy.line, copy.column) == (
        str(error),
        "data.csv",
        7,
        "record_id",
    )
    assert str(DataError("bad", source="x.jsonl")) == "x.jsonl: bad"
    assert str(DataError("bad")) == "bad"
