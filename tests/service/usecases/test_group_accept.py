"""Deletions accepted together (group commit) end where one-by-one acceptance would.

A group is one transaction: each request gets its own outcome (accepted, replayed, or its
error), an erroneous one leaves nothing behind, and the service's state afterwards (records,
keys, depths, routes, open retrains, the audit chain) is the state accepting the same
requests one after another leaves, except that the group shares each model's new routing
version, purge job and retrain jobs.
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from service.access.principal import cli_principal
from service.audit.keys import load_keyring
from service.audit.verify import load_chain, verify_chain
from service.core import Service
from service.db.tables import (
    DataKeyRow,
    DeletionRequestRow,
    JobRow,
    PlacementRow,
    RecordRow,
    RoutingRow,
    SequenceRow,
)
from service.lineage.deletion import DeletionInput, NoMatch
from service.lineage.errors import LineageError, Unprocessable
from service.lineage.registry import get_model
from service.states import JobKind, JobState
from service.usecases.accept_deletion import Submission
from service.usecases.verify import verify
from service.views import Accepted
from tests.service.conftest import _settings
from tests.service.lineage.test_flow import trained

PRINCIPAL = cli_principal()


def _group() -> list[Submission]:
    """Fresh erasures, a miss, an in-group replay and key reuse, repeats of a subject."""
    subs = [
        (DeletionInput(subject_id="subject-0"), "a"),
        (DeletionInput(subject_id="subject-1"), "b"),
        (DeletionInput(subject_id="nobody"), "c"),  # no match
        (DeletionInput(subject_id="subject-0"), "a"),  # replays the first
        (DeletionInput(subject_id="subject-2"), "b"),  # key b with another body
        (DeletionInput(subject_id="subject-0"), "d"),  # already erased by the first
        (DeletionInput(record_ids=("rec-0010", "rec-0040", "nope")), "e"),
        (DeletionInput(subject_id="subject-4"), None),
        (DeletionInput(record_ids=("rec-0013",)), "f"),  # subject-4's: erased just before
    ]
    return [Submission(req, PRINCIPAL, key) for req, key in subs]


def _summary(out: Accepted | BaseException) -> tuple[Any, ...]:
    if isinstance(out, BaseException):
        return (type(out).__name__, str(out))
    r = out.request
    return (out.replayed, r.state, r.outcome, r.n_records, out.not_found, len(r.timeline))


def _state(service: Service, model_id: int, ids: list[str | None]) -> dict[str, Any]:
    """What a deletion leaves, named so that two deployments compare: requests by their
    position in the group, jobs by what they do."""
    position = {public_id: n for n, public_id in enumerate(ids) if public_id is not None}
    with service.db.read() as s:
        pk_position = {
            pk: position.get(pid)
            for pk, pid in s.execute(select(DeletionRequestRow.id, DeletionRequestRow.public_id))
        }
        records = {
            rid: (state, pk_position.get(by), payload is None, key is None)
            for rid, state, by, payload, key in s.execute(
                select(
                    RecordRow.record_id,
                    RecordRow.state,
                    RecordRow.erased_by,
                    RecordRow.payload,
                    RecordRow.data_key_id,
                )
            )
        }
        seq_pos = {
            q.id: (q.shard, q.position)
            for q in s.scalars(select(SequenceRow).where(SequenceRow.model_id == model_id))
        }
        return {
            "records": records,
            "erased_placements": sorted(
                (p.shard, p.slice, p.record_pk)
                for p in s.scalars(
                    select(PlacementRow).where(PlacementRow.erased_version.is_not(None))
                )
            ),
            "depths": {
                seq_pos[q.id]: q.valid_depth
                for q in s.scalars(select(SequenceRow).where(SequenceRow.model_id == model_id))
            },
            "routes": {
                r.shard: (None if r.sequence_id is None else seq_pos[r.sequence_id], r.depth)
                for r in s.scalars(select(RoutingRow).where(RoutingRow.model_id == model_id))
            },
            "open_retrains": sorted(
                (seq_pos[j.sequence_id], j.from_step)
                for j in s.scalars(
                    select(JobRow).where(
                        JobRow.kind == JobKind.RETRAIN, JobRow.state == JobState.QUEUED
                    )
                )
                if j.sequence_id is not None
            ),
            "queued_purges": len(
                s.scalars(
                    select(JobRow).where(
                        JobRow.kind == JobKind.PURGE, JobRow.state == JobState.QUEUED
                    )
                ).all()
            ),
            "data_keys": s.scalar(select(DataKeyRow.id).limit(1)) is not None,
            "requests": len(pk_position),
        }


def _chain_ok(service: Service) -> None:
    with service.db.read() as s:
        events = load_chain(s)
    result = verify_chain(events, load_keyring([service.settings.keyring_dir]))
    assert result.ok and result.n_signatures, result


def _copy(service: Service, tmp_path: Path) -> Service:
    home = tmp_path / "serial"
    shutil.copytree(service.settings.home, home)
    other = Service.open(_settings(home))
    return other


def test_a_group_ends_where_one_by_one_acceptance_ends(tmp_path: Path) -> None:
    """On SQLite: the one-by-one reference is a copy of the deployment's directory."""
    service = Service.open(_settings(tmp_path / "grouped"))
    service.upgrade_schema()
    model_id = trained(service)
    serial = _copy(service, tmp_path)
    subs = _group()
    with service.db.read() as s:
        version = get_model(s, model_id).routing_version

    grouped = service.acting_as(PRINCIPAL)._accept_group(subs)
    one_by_one: list[Accepted | BaseException] = []
    for sub in subs:
        one_by_one += serial.acting_as(PRINCIPAL)._accept_group([sub])

    assert [_summary(o) for o in grouped] == [_summary(o) for o in one_by_one]
    assert isinstance(grouped[2], NoMatch) and isinstance(grouped[4], Unprocessable)
    first, again = grouped[0], grouped[3]
    assert isinstance(first, Accepted) and isinstance(again, Accepted)
    assert again.replayed and again.request.id == first.request.id
    assert again.status_token != first.status_token  # the newest caller's token holds

    def ids(outs: list[Accepted | BaseException]) -> list[str | None]:
        return [o.request.id if isinstance(o, Accepted) and not o.replayed else None for o in outs]

    assert _state(service, model_id, ids(grouped)) == _state(serial, model_id, ids(one_by_one))
    for svc in (service, serial):
        _chain_ok(svc)
        with svc.db.read() as s:
            report = verify(s, svc.store, svc.settings.caches_dir)
        assert report.ok, report.violations
    # The group shares one routing version per model; one by one, each request bumps it.
    with service.db.read() as s:
        versions = set(
            s.scalars(
                select(PlacementRow.erased_version).where(PlacementRow.erased_version.is_not(None))
            )
        )
    assert versions == {version + 1}
    serial.db.dispose()
    service.db.dispose()


def test_each_request_of_a_group_names_the_cuts_its_records_caused(service: Service) -> None:
    model_id = trained(service)
    subs = [Submission(DeletionInput(subject_id=f"subject-{k}"), PRINCIPAL) for k in range(6)]
    with service.db.read() as s:
        before = {
            (q.shard, q.position): (q.valid_depth, list(q.permutation))
            for q in s.scalars(select(SequenceRow).where(SequenceRow.model_id == model_id))
        }
    outs = service.acting_as(PRINCIPAL)._accept_group(subs)
    with service.db.read() as s:
        for out in outs:
            assert isinstance(out, Accepted)
            mine = {
                (p.shard, p.slice)
                for p in s.scalars(
                    select(PlacementRow)
                    .join(RecordRow, RecordRow.id == PlacementRow.record_pk)
                    .join(DeletionRequestRow, DeletionRequestRow.id == RecordRow.erased_by)
                    .where(DeletionRequestRow.public_id == out.request.id)
                )
            }
            expected = {
                key
                for key, (depth, perm) in before.items()
                if any(shard == key[0] and sl in perm[:depth] for shard, sl in mine)
            }
            assert {(c.shard, c.sequence) for c in out.request.cut} == expected
            assert out.request.state == "effective"


def test_a_failing_group_is_accepted_one_by_one(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unexpected error inside the group's transaction: the group rolls back, each request
    is tried alone, and only the one that fails alone gets the error."""
    trained(service)
    from service.usecases import accept_deletion as use

    real = use.matching

    def matching(session: Any, req: DeletionInput, secret: bytes) -> Any:
        if req.subject_id == "subject-2":
            raise RuntimeError("disk on fire")
        return real(session, req, secret)

    monkeypatch.setattr(use, "matching", matching)
    subs = [
        Submission(DeletionInput(subject_id=f"subject-{k}"), PRINCIPAL, f"k{k}") for k in range(4)
    ]
    outs = service.acting_as(PRINCIPAL)._accept_group(subs)
    assert isinstance(outs[2], RuntimeError)
    assert all(isinstance(outs[k], Accepted) for k in (0, 1, 3))
    with service.db.read() as s:
        stored = s.scalars(select(DeletionRequestRow.idempotency_key)).all()
    assert len(stored) == 3  # each accepted once; the failed one left nothing
    _chain_ok(service)


def test_concurrent_callers_are_accepted_in_groups_each_once(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    model_id = trained(service)
    app = service.acting_as(PRINCIPAL)
    sizes: list[int] = []
    release = threading.Event()
    real = type(app)._accept_group

    def held(self: Service, subs: Any) -> Any:
        sizes.append(len(subs))
        if len(sizes) == 1:
            assert release.wait(20)  # the first group waits until the others queue
        return real(self, subs)

    monkeypatch.setattr(type(app), "_accept_group", held)
    bodies = [DeletionInput(subject_id=f"subject-{k}") for k in range(6)]
    bodies += [DeletionInput(record_ids=(f"rec-{i:04d}",)) for i in range(30, 36)]
    results: dict[int, Any] = {}

    def call(k: int) -> None:
        try:
            results[k] = app.accept(bodies[k], f"key-{k}")
        except LineageError as exc:
            results[k] = exc

    threads = [threading.Thread(target=call, args=(k,)) for k in range(len(bodies))]
    threads[0].start()
    while not sizes:
        threading.Event().wait(0.005)
    for t in threads[1:]:
        t.start()
    while len(service.intake._queue) < len(bodies) - 1:
        threading.Event().wait(0.005)
    release.set()
    for t in threads:
        t.join(30)
    assert sizes == [1, len(bodies) - 1]
    assert all(results[k].request.state == "effective" for k in range(len(bodies)))
    assert len({results[k].request.id for k in range(len(bodies))}) == len(bodies)
    with service.db.read() as s:
        assert len(s.scalars(select(DeletionRequestRow)).all()) == len(bodies)
        report = verify(s, service.store, service.settings.caches_dir)
    assert report.ok, report.violations
    _chain_ok(service)
    # Replays after the fact find each request under its key.
    again = app.accept(bodies[3], "key-3")
    assert again.replayed and again.request.id == results[3].request.id
    assert model_id
