"""Worst-case deletions: a whole slice, a whole label, the first slice of every sequence.

Each must leave the service as any deletion does: every request completed with a signed
certificate as soon as its erasure is done (before any retrain), then the model back at full
depth, ``verify`` clean, and every sequence equal by hash to training from scratch on what
is left. Emptied slices train as empty steps; no job fails.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest
from sqlalchemy import select

from service.audit.certificates import certificate_document, check_certificate
from service.audit.keys import load_keyring
from service.core import Service
from service.db.tables import JobRow, PlacementRow, RecordRow, SequenceRow
from service.jobs.queues import ERASURE_QUEUE
from service.jobs.runner import LocalWorker
from service.lineage.deletion import DeletionInput
from service.lineage.publish import sequence_chain
from service.lineage.registry import get_model
from service.usecases.accept_deletion import Submission
from service.usecases.verify import verify
from service.usecases.views import model_status
from service.views import Accepted
from tests.service.conftest import SMALL, synthetic_dataset
from tests.service.lineage.test_flow import from_scratch

# Every record has a subject (three records each), so a subject can be found in any slice.
N_RECORDS, N_SUBJECTS = 72, 24

Placed = list[tuple[str, str | None, int, int, int]]  # record id, subject, label, shard, slice


def _trained(service: Service) -> tuple[int, Placed]:
    dataset = synthetic_dataset(N_RECORDS, N_SUBJECTS)
    service.import_dataset("synthetic", dataset)
    model_id = service.create_model("synthetic", SMALL)
    LocalWorker(service.db, service.settings).drain()
    with service.db.read() as s:
        where = {
            rid: (shard, sl)
            for rid, shard, sl in s.execute(
                select(RecordRow.record_id, PlacementRow.shard, PlacementRow.slice)
                .join(PlacementRow, PlacementRow.record_pk == RecordRow.id)
                .where(PlacementRow.model_id == model_id)
            )
        }
    return model_id, [
        (r.record_id, r.subject_id, int(r.label), *where[r.record_id]) for r in dataset.records
    ]


def _one_slice(placed: Placed, service: Service, model_id: int) -> list[DeletionInput]:
    ids = tuple(r for r, _, _, shard, sl in placed if (shard, sl) == (0, 1))
    assert ids
    return [DeletionInput(record_ids=ids)]


def _one_label(placed: Placed, service: Service, model_id: int) -> list[DeletionInput]:
    return [DeletionInput(record_ids=tuple(r for r, _, label, _, _ in placed if label == 0))]


def _first_slices(placed: Placed, service: Service, model_id: int) -> list[DeletionInput]:
    """One subject in the first slice of every sequence of every shard."""
    with service.db.read() as s:
        firsts = {
            (q.shard, q.permutation[0])
            for q in s.scalars(select(SequenceRow).where(SequenceRow.model_id == model_id))
        }
    subjects = []
    for shard, sl in sorted(firsts):
        subject = next(sub for _, sub, _, sh, x in placed if (sh, x) == (shard, sl))
        assert subject is not None
        if subject not in subjects:
            subjects.append(subject)
    return [DeletionInput(subject_id=sub) for sub in subjects]


CASES: dict[str, Callable[[Placed, Service, int], list[DeletionInput]]] = {
    "every record of one slice": _one_slice,
    "every record of one label": _one_label,
    "a subject in the first slice of every sequence": _first_slices,
}


FIRSTS = "a subject in the first slice of every sequence"


@pytest.mark.parametrize(("case", "grouped"), [(case, False) for case in CASES] + [(FIRSTS, True)])
def test_worst_case_deletion_completes_and_the_model_recovers(
    service: Service, case: str, grouped: bool
) -> None:
    """``grouped``: the requests are accepted together, in one group commit."""
    model_id, placed = _trained(service)
    requests = CASES[case](placed, service, model_id)
    if grouped:
        outs = service._accept_group([Submission(r, service.principal) for r in requests])
        assert len(outs) > 1 and all(isinstance(o, Accepted) for o in outs)
        ids = [o.request.id for o in outs if isinstance(o, Accepted)]
    else:
        ids = [service.accept(r).request.id for r in requests]

    # The erasure queue alone completes every request, each with a signed certificate.
    worker = LocalWorker(service.db, service.settings)
    while worker.run_once(ERASURE_QUEUE):
        pass
    ring = load_keyring([service.settings.keyring_dir])
    with service.db.read() as s:
        for public_id in ids:
            assert check_certificate(certificate_document(s, public_id).encode(), ring).ok
        cut = model_status(s, get_model(s, model_id))
        assert cut["status"] in ("degraded", "unavailable")
    ready, probe = service.readiness()  # a model that cannot serve never stops erasure
    assert ready and not isinstance(probe, dict)
    assert ("models" in probe.degraded) == (cut["status"] == "unavailable")

    worker.drain()
    with service.db.read() as s:
        status = model_status(s, get_model(s, model_id))
        assert status["status"] == "ready", status
        assert all(sh["served_depth"] == SMALL.config.n_slices for sh in status["shards"])
        assert status["failed_jobs"] == []
        assert not s.scalars(select(JobRow).where(JobRow.state == "failed")).all()
        report = verify(s, service.store, service.settings.caches_dir)
        assert report.ok, report.violations
        seqs = list(s.scalars(select(SequenceRow).where(SequenceRow.model_id == model_id)))
        chains = {q.id: [c.sha256 for c in sequence_chain(s, q, q.valid_depth)] for q in seqs}
    for seq_id, chain in chains.items():
        assert list(from_scratch(service, model_id, seq_id)) == chain
    if case == "every record of one slice":
        _assert_empty_steps(service, model_id)


def _assert_empty_steps(service: Service, model_id: int) -> None:
    """The emptied slice made a step with no record for the sequences that start with it."""
    with service.db.read() as s:
        starts: Sequence[SequenceRow] = s.scalars(
            select(SequenceRow).where(SequenceRow.model_id == model_id, SequenceRow.shard == 0)
        ).all()
        firsts = [sequence_chain(s, q, 1)[0] for q in starts if q.permutation[0] == 1]
    assert all(c.n_records == 0 for c in firsts)
