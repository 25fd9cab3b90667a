"""What sits in a model's shards and slices: counts, active record ids, filters, pages."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from service.core import Service
from service.db.tables import PlacementRow, RecordRow
from service.lineage.deletion import DeletionInput
from service.lineage.errors import NotFound
from tests.service.conftest import SMALL, synthetic_dataset


def registered(service: Service) -> int:
    """A model placed on the synthetic dataset (placements exist from registration on)."""
    service.import_dataset("synthetic", synthetic_dataset())
    return service.create_model("synthetic", SMALL)


def stored(service: Service, model_id: int) -> dict[str, tuple[int, int, int | None]]:
    """record id -> (shard, slice, erased_version), read straight from the table."""
    with service.db.read() as s:
        rows = s.execute(
            select(RecordRow.record_id, PlacementRow.shard, PlacementRow.slice)
            .add_columns(PlacementRow.erased_version)
            .join(RecordRow, RecordRow.id == PlacementRow.record_pk)
            .where(PlacementRow.model_id == model_id)
        )
        return {rid: (sh, sl, v) for rid, sh, sl, v in rows}


def test_counts_and_ids_match_the_placements_table(service: Service) -> None:
    model_id = registered(service)
    page = service.placements(model_id)
    table = stored(service, model_id)
    assert (page.active, page.erased, page.next_cursor) == (72, 0, None)
    assert {(r.record_id, r.shard, r.slice) for r in page.records} == {
        (rid, sh, sl) for rid, (sh, sl, _) in table.items()
    }
    cells = {(c.shard, c.slice): c.active for c in page.slices}
    assert sorted(cells) == [(sh, sl) for sh in range(2) for sl in range(3)]
    for (sh, sl), n in cells.items():
        assert n == sum(1 for x in table.values() if x[:2] == (sh, sl))
    keys = [(r.shard, r.slice) for r in page.records]
    assert keys == sorted(keys), "records are listed shard by shard, slice by slice"


def test_erased_records_leave_the_ids_and_count_as_erased(service: Service) -> None:
    model_id = registered(service)
    service.accept(DeletionInput(subject_id="subject-0", dataset="synthetic"))
    table = stored(service, model_id)
    gone = {rid for rid, (_, _, v) in table.items() if v is not None}
    assert gone == {"rec-0000", "rec-0001", "rec-0002"}
    page = service.placements(model_id)
    assert (page.active, page.erased, page.routing_version) == (69, 3, 1)
    assert not gone & {r.record_id for r in page.records}
    for c in page.slices:
        hit = [x for x in table.values() if x[:2] == (c.shard, c.slice)]
        assert (c.active, c.erased) == (
            sum(1 for x in hit if x[2] is None),
            sum(1 for x in hit if x[2] is not None),
        )


def test_filters_by_shard_and_slice(service: Service) -> None:
    model_id = registered(service)
    table = stored(service, model_id)
    one = service.placements(model_id, shard=1, slice_=2)
    assert [(c.shard, c.slice) for c in one.slices] == [(1, 2)]
    assert {r.record_id for r in one.records} == {
        rid for rid, (sh, sl, _) in table.items() if (sh, sl) == (1, 2)
    }
    across = service.placements(model_id, slice_=0)
    assert {(c.shard, c.slice) for c in across.slices} == {(0, 0), (1, 0)}
    assert across.active == sum(1 for sh, sl, _ in table.values() if sl == 0)
    with pytest.raises(NotFound, match="no shard 2 slice 0"):
        service.placements(model_id, shard=2, slice_=0)
    with pytest.raises(NotFound, match="no model 99"):
        service.placements(99)


def test_pages_cover_every_active_record_once_in_order(service: Service) -> None:
    model_id = registered(service)
    whole = [r.record_id for r in service.placements(model_id).records]
    seen: list[str] = []
    cursor = None
    while True:
        page = service.placements(model_id, limit=7, cursor=cursor)
        assert len(page.records) <= 7 and page.active == 72
        seen += [r.record_id for r in page.records]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == whole and len(seen) == 72


@pytest.mark.parametrize(
    "cursor", ["garbage", "ZDoxMg", "cDoxOjI", "cDo5OTk5OTk5OTk5OTk5OTk5OTk5OjA6MA"]
)
def test_a_cursor_this_list_did_not_give_is_not_found(service: Service, cursor: str) -> None:
    model_id = registered(service)
    with pytest.raises(NotFound, match="no page at this cursor"):
        service.placements(model_id, limit=5, cursor=cursor)
