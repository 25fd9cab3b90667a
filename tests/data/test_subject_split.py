"""``Dataset.split_by_subject``: a data subject's records all land on one side."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.data import Dataset, Record


def dataset(sizes: list[int], loose: int, *, reverse: bool = False) -> Dataset:
    """Subjects ``s0..`` with ``sizes[i]`` records each, then ``loose`` records without one."""
    records = [
        Record(f"s{i}-r{j}", f"s{i}", j % 2, text=f"text {i} {j}")
        for i, size in enumerate(sizes)
        for j in range(size)
    ]
    records += [Record(f"loose-{k:03d}", None, k % 2, text=f"loose {k}") for k in range(loose)]
    if reverse:
        records.reverse()
    return Dataset(name="d", records=tuple(records), label_names=("neg", "pos"))


def subjects(part: Dataset) -> set[str]:
    return {r.subject_id for r in part.records if r.subject_id is not None}


@given(
    sizes=st.lists(st.integers(1, 9), max_size=12),
    loose=st.integers(0, 30),
    fraction=st.floats(0, 1),
    seed=st.integers(0, 2**32),
)
def test_no_subject_on_both_sides_and_the_size_is_as_close_as_the_groups_allow(
    sizes: list[int], loose: int, fraction: float, seed: int
) -> None:
    data = dataset(sizes, loose)
    want = round(len(data) * fraction)
    train, test = data.split_by_subject(want, seed)
    assert not subjects(train) & subjects(test)
    assert sorted(train.record_ids() + test.record_ids()) == sorted(data.record_ids())
    if loose >= want or not sizes:
        assert len(test) == want, "records without a subject fill any gap exactly"
    gap = want - len(test)
    if gap > 0:  # short only when nothing left in train fits the gap
        left = [sizes[int(s[1:])] for s in subjects(train)]
        assert all(size > gap for size in left)
        assert all(r.subject_id is not None for r in train.records)
    if gap < 0:  # over by one group at most, and nearer than without it
        held = [sizes[int(s[1:])] for s in subjects(test)]
        assert any(len(test) - size < want and -gap < want - (len(test) - size) for size in held)
        assert len(train) > 0


def test_the_same_seed_and_records_give_the_same_split_in_any_order() -> None:
    data = dataset([3, 4, 2, 5, 1], 10)
    train, test = data.split_by_subject(9, seed=4)
    again = dataset([3, 4, 2, 5, 1], 10, reverse=True).split_by_subject(9, seed=4)
    assert set(test.record_ids()) == set(again[1].record_ids())
    assert test.record_ids() == [r for r in data.record_ids() if r in set(test.record_ids())]
    others = {frozenset(data.split_by_subject(9, seed=s)[1].record_ids()) for s in range(8)}
    assert len(others) > 1, "the seed chooses"
    assert len(train) + len(test) == len(data)


def test_without_subjects_it_is_the_record_split() -> None:
    data = dataset([], 40)
    for seed in range(5):
        assert data.split_by_subject(13, seed) == data.split(13, seed)


def test_only_subjects_lands_as_near_as_whole_subjects_can() -> None:
    data = dataset([4, 4, 4, 4, 4], 0)
    _, test = data.split_by_subject(9, seed=0)
    assert len(test) == 8, "two whole subjects (8) is nearer 9 than three (12)"
    _, test = data.split_by_subject(11, seed=0)
    assert len(test) == 12
    train, test = dataset([6], 0).split_by_subject(3, seed=0)
    assert (len(train), len(test)) == (6, 0), "one subject cannot be split"


@pytest.mark.parametrize("bad", [-1, 11])
def test_refuses_a_size_out_of_range(bad: int) -> None:
    with pytest.raises(ValueError, match="test_size must be"):
        dataset([5], 5).split_by_subject(bad, seed=0)
