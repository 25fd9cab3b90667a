"""The whole deletion flow on the lineage DB, with the embedded worker."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from sqlalchemy import select

from models.cache import ActivationCache
from models.checkpoints import InMemoryCheckpointStore
from models.s3t import S3TTrainer
from service.core import Service
from service.db.tables import (
    CheckpointRow,
    JobRow,
    ModelRow,
    RecordRow,
    RoutingRow,
    SequenceRow,
)
from service.jobs.queues import ERASURE_QUEUE
from service.jobs.runner import LocalWorker
from service.jobs.shards import make_encoder, read_shard
from service.lineage.deletion import DeletionInput, NoMatch
from service.lineage.publish import sequence_chain
from service.lineage.query import record_lineage
from service.lineage.registry import get_model, model_config
from service.usecases.verify import verify
from service.usecases.views import model_status
from tests.service.conftest import SMALL, synthetic_dataset


def trained(service: Service) -> int:
    service.import_dataset("synthetic", synthetic_dataset())
    model_id = service.create_model("synthetic", SMALL)
    LocalWorker(service.db, service.settings).drain()
    return model_id


def served(service: Service, model_id: int) -> dict[int, tuple[int, list[CheckpointRow]]]:
    with service.db.read() as s:
        out = {}
        for r in s.scalars(select(RoutingRow).where(RoutingRow.model_id == model_id)):
            if r.sequence_id is None:
                out[r.shard] = (0, [])
                continue
            seq = s.get(SequenceRow, r.sequence_id)
            assert seq is not None
            out[r.shard] = (r.depth, sequence_chain(s, seq, r.depth))
        return out


def from_scratch(service: Service, model_id: int, seq_id: int) -> tuple[str, ...]:
    """Train a sequence anew on the records its shard holds now (fresh cache and store)."""
    with service.db.snapshot() as s:
        model = get_model(s, model_id)
        config = model_config(model)
        seq = s.get(SequenceRow, seq_id)
        assert seq is not None
        snap = read_shard(s, model_id, seq.shard, config.n_slices)
        perm = tuple(seq.permutation)
    encoder = make_encoder(config)
    with tempfile.TemporaryDirectory() as tmp:
        cache = ActivationCache.build(
            Path(tmp), encoder, list(snap.inputs.items()), max_length=config.max_length
        )
        return S3TTrainer(encoder, config, InMemoryCheckpointStore()).train_sequence(
            snap.data, cache, perm
        )


def test_delete_subject_cuts_at_once_and_retrains_to_from_scratch_bytes(service: Service) -> None:
    model_id = trained(service)
    with service.db.read() as s:
        status = model_status(s, get_model(s, model_id))
    assert status["status"] == "ready"
    assert [sh["served_depth"] for sh in status["shards"]] == [3, 3]
    with service.db.read() as s:
        assert verify(s, service.store).ok

    view, replayed, _ = service.delete(DeletionInput(subject_id="subject-1"), "key-1")
    assert not replayed
    assert view["state"] == "effective" and view["n_records"] == 3
    assert view["cut"], "a trained shard held the subject: something must be cut"
    assert [e["state"] for e in view["timeline"]] == ["received", "effective"]

    # Immediately: no served checkpoint was trained on the subject's records.
    with service.db.read() as s:
        report = verify(s, service.store, service.settings.caches_dir)
        assert report.ok, report.violations  # cache rows may wait for the pending retrain
        erased = s.scalars(select(RecordRow).where(RecordRow.state == "erased")).all()
        assert {r.record_id for r in erased} == {"rec-0003", "rec-0004", "rec-0005"}
        assert all(r.payload is None for r in erased)
        for rec in erased:
            for entry in record_lineage(s, rec.record_id)[0]["models"]:
                assert entry["checkpoints"], "lineage keeps the checkpoints it shaped"
                assert not any(c["served"] for c in entry["checkpoints"])
                assert all(c["state"] == "retired" for c in entry["checkpoints"])
                assert all(not service.store.exists(c["sha256"]) for c in entry["checkpoints"])
    cut_shards = {c["shard"] for c in view["cut"]}
    routes = served(service, model_id)
    assert all(routes[sh][0] < 3 for sh in cut_shards)

    # The erasure queue alone completes the request: the retrains are the model's work.
    worker = LocalWorker(service.db, service.settings)
    while worker.run_once(ERASURE_QUEUE):
        pass
    done, _, _ = service.delete(DeletionInput(subject_id="subject-1"), "key-1")
    assert done["state"] == "completed"
    assert [e["state"] for e in done["timeline"]] == ["received", "effective", "completed"]
    assert all(served(service, model_id)[sh][0] < 3 for sh in cut_shards)
    with service.db.read() as s:
        queued = s.scalars(select(JobRow.kind).where(JobRow.state == "queued")).all()
        assert queued and set(queued) == {"retrain"}

    worker.drain()
    with service.db.read() as s:
        report = verify(s, service.store, service.settings.caches_dir)
        assert report.ok, report.violations
    final, _, _ = service.delete(DeletionInput(subject_id="subject-1"), "key-1")
    assert final["timeline"] == done["timeline"]
    assert all(depth == 3 for depth, _ in served(service, model_id).values())
    with service.db.read() as s:
        seqs = s.scalars(select(SequenceRow).where(SequenceRow.model_id == model_id)).all()
        chains = {q.id: [c.sha256 for c in sequence_chain(s, q, 3)] for q in seqs}
    for cut in view["cut"]:
        seq_id = next(
            q.id for q in seqs if q.shard == cut["shard"] and q.position == cut["sequence"]
        )
        assert list(from_scratch(service, model_id, seq_id)) == chains[seq_id]


def test_deletion_is_idempotent_and_checks_the_body(service: Service) -> None:
    trained(service)
    first, replayed, _ = service.delete(DeletionInput(record_ids=("rec-0030",)), "k")
    again, replayed_again, _ = service.delete(DeletionInput(record_ids=("rec-0030",)), "k")
    assert not replayed and replayed_again and again["id"] == first["id"]
    from service.lineage.errors import Unprocessable

    with pytest.raises(Unprocessable):
        service.delete(DeletionInput(record_ids=("rec-0031",)), "k")


def test_unknown_subject_is_answered_without_touching_the_db(service: Service) -> None:
    trained(service)
    with service.db.read() as s:
        version = s.scalar(select(ModelRow.routing_version))
    with pytest.raises(NoMatch):
        service.delete(DeletionInput(subject_id="nobody"))
    with service.db.read() as s:
        assert s.scalar(select(ModelRow.routing_version)) == version
        assert not s.scalars(select(RecordRow).where(RecordRow.state == "erased")).all()


def test_verify_catches_a_cut_checkpoint_put_back_into_routing(service: Service) -> None:
    model_id = trained(service)
    view, _, _ = service.delete(DeletionInput(subject_id="subject-2"))
    cut = view["cut"][0]
    with service.db.write() as s:
        seq = s.scalar(
            select(SequenceRow).where(
                SequenceRow.model_id == model_id,
                SequenceRow.shard == cut["shard"],
                SequenceRow.position == cut["sequence"],
            )
        )
        assert seq is not None
        seq.valid_depth = cut["from_depth"]
        route = s.get(RoutingRow, (model_id, cut["shard"]))
        assert route is not None
        route.sequence_id, route.depth = seq.id, cut["from_depth"]
    with service.db.read() as s:
        report = verify(s, service.store)
    assert not report.ok
    assert any("retired" in v or "erased record" in v for v in report.violations)


@pytest.mark.postgres
def test_concurrent_duplicates_create_one_request(pg_service: Service) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from service.db.tables import DeletionRequestRow
    from service.lineage.errors import Conflict

    trained(pg_service)

    def post(_: int) -> str:
        try:
            view, _, _ = pg_service.delete(DeletionInput(subject_id="subject-0"), "same-key")
            return str(view["id"])
        except Conflict:
            return "409"

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(post, range(16)))
    ids = {a for a in answers if a != "409"}
    assert len(ids) == 1, answers
    with pg_service.db.read() as s:
        assert len(s.scalars(select(DeletionRequestRow)).all()) == 1


def test_verify_catches_erased_rows_left_in_a_cache(service: Service) -> None:
    from sqlalchemy import update

    from service.db.tables import JobRow

    trained(service)
    service.delete(DeletionInput(subject_id="subject-3"))
    with service.db.write() as s:  # pretend the retrain ran without cleaning the cache
        s.execute(update(JobRow).where(JobRow.state == "queued").values(state="done"))
    with service.db.read() as s:
        report = verify(s, service.store, service.settings.caches_dir)
    assert any("activation cache still holds" in v for v in report.violations)
