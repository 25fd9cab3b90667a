"""The audit report: deletion requests, deadlines, served depth, held-out accuracy (overall
and per label) and an Art. 30 style summary, as numbers (``build_report``) or one
self-contained HTML page (``render_html``, from ``service.audit.page``).

Privacy invariant: the report carries counts, HMAC subject keys, content hashes and ids of
requests, models and datasets only, never a record payload, a record id, a request's free-text
reason or a raw subject id (the database holds none of the latter anyway). Times are UTC ISO
8601 strings and durations seconds, so the JSON form is what the HTML page is drawn from.
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
from collections import Counter
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.audit.page import render_html
from service.db.base import utcnow
from service.db.tables import (
    AuditEventRow,
    DatasetRow,
    DeletionJobRow,
    DeletionRequestRow,
    JobRow,
    ModelRow,
    RecordRow,
)
from service.states import REQUEST_STATES, JobKind, RecordState

__all__ = ["build_report", "render_html"]

REPORT_VERSION = 1
DEADLINE = ("met", "missed", "open")
TOMBSTONE_KEPT = ("record_id", "content_hmac", "subject_key", "label", "erased_at", "erased_by")
RETENTION = (
    "An erased record keeps only its tombstone: its record id, an HMAC-SHA256 of its "
    "content under the deployment secret (so holding the text is not enough to confirm it "
    "was in the data), the HMAC-SHA256 key of its data subject (never the raw subject id), "
    "its label, and when and by which request it was erased. Tombstones are kept for as "
    "long as the dataset exists, so that lineage and certificates can prove the erasure."
)
MECHANISM = (
    "Every payload is stored sealed with AES-256-GCM under a data key of its data subject (or "
    "of the record, when it has no subject); the data keys are stored wrapped by the "
    "deployment's key-encryption key. The transaction that accepts a request destroys the "
    "data keys of the erased records and nulls their payloads, so every remaining copy of "
    "their ciphertext (database journal and free pages, replicas, backups, exports) can no "
    "longer be decrypted. Deleted key rows are overwritten on SQLite (secure_delete, WAL "
    "truncated after each erasure) and vacuumed on PostgreSQL, whose WAL segments and base "
    "backups keep the wrapped key rows for as long as they are retained. Quarantined copies "
    "for approximate unlearning are sealed under a key of the request, destroyed when it "
    "completes or fails. Activation-cache rows of erased records are zeroed and removed by "
    "a purge job that runs right after the acceptance, on a queue no training occupies; the "
    "request completes only after it. `unlearn verify --erasure` searches the files and "
    "database pages the service keeps for the erased texts and destroyed keys."
)
COMPLETION = (
    "A request is completed, and its certificate signed, when its records are erased from "
    "every artifact the service keeps: records and their data keys in the accepting "
    "transaction, checkpoints trained on them retired and deleted, activation-cache rows "
    "purged, and any training that was reading them stopped. That takes seconds and never "
    "waits for a retrain. Restoring an exact model's served depth afterwards is the model's "
    "work: the certificate names the retrain jobs its cuts started, each job's audit events "
    "record its outcome and evidence, and a retrain that fails is an incident on the model "
    "(its status lists it), never a failed request."
)


def build_report(
    session: Session,
    *,
    start: dt.datetime | None,
    end: dt.datetime | None,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Everything in the window ``[start, end)`` (requests by ``received_at``, events by
    ``at``; ``None`` leaves that side open). Bounds must be timezone-aware."""
    for bound in (start, end):
        if bound is not None and bound.tzinfo is None:
            raise ValueError("report bounds must be timezone-aware")
    if start is not None and end is not None and end <= start:
        raise ValueError("the report window is empty: --to must be after --from")
    now = utcnow() if now is None else now
    query = select(DeletionRequestRow).order_by(
        DeletionRequestRow.received_at, DeletionRequestRow.id
    )
    if start is not None:
        query = query.where(DeletionRequestRow.received_at >= start)
    if end is not None:
        query = query.where(DeletionRequestRow.received_at < end)
    rows = list(session.scalars(query))
    unlearned = _unlearned_models(session, [r.id for r in rows])
    items = [_request(r, now, unlearned.get(r.id, set())) for r in rows]
    served, accuracy = _events(session, start, end)
    return {
        "report_version": REPORT_VERSION,
        "generated_at": now.isoformat(),
        "window": {"from": _iso(start), "to": _iso(end)},
        "requests": {
            "total": len(items),
            "by_state": {s: sum(1 for i in items if i["state"] == s) for s in REQUEST_STATES},
            "over_time": _over_time(items),
            "time_to_effective_s": _distribution(i["time_to_effective_s"] for i in items),
            "time_to_completed_s": _distribution(i["time_to_completed_s"] for i in items),
            "deadline": {d: sum(1 for i in items if i["deadline"] == d) for d in DEADLINE},
            "items": items,
        },
        "served_depth": served,
        "accuracy": accuracy,
        "art30": _art30(session),
    }


def _iso(at: dt.datetime | None) -> str | None:
    return None if at is None else at.isoformat()


def _seconds(a: dt.datetime, b: dt.datetime | None) -> float | None:
    return None if b is None else round((b - a).total_seconds(), 3)


def _unlearned_models(session: Session, request_ids: list[int]) -> dict[int, set[int]]:
    """Per request, the approximate models its ``unlearn`` jobs ran on (such a request cuts
    nothing, so its models are not in ``cut``)."""
    found: dict[int, set[int]] = {}
    for start in range(0, len(request_ids), 500):
        rows = session.execute(
            select(DeletionJobRow.request_id, JobRow.model_id)
            .join(JobRow, JobRow.id == DeletionJobRow.job_id)
            .where(
                DeletionJobRow.request_id.in_(request_ids[start : start + 500]),
                JobRow.kind == JobKind.UNLEARN,
            )
        )
        for request_id, model_id in rows:
            found.setdefault(request_id, set()).add(int(model_id))
    return found


def _request(r: DeletionRequestRow, now: dt.datetime, unlearned: set[int]) -> dict[str, Any]:
    """One request; ``deadline`` is met (completed by ``due_at``), missed (completed late,
    or not completed and past due) or open (not completed, not yet due). ``models`` are the
    models it cut and those that unlearned it approximately."""
    if r.completed_at is not None:
        deadline = "met" if r.completed_at <= r.due_at else "missed"
    else:
        deadline = "missed" if now > r.due_at else "open"
    return {
        "id": r.public_id,
        "state": r.state,
        "outcome": r.outcome,
        "subject_key": r.subject_key,
        "dataset": r.dataset,
        "n_records": r.n_records,
        "models": sorted({int(c["model"]) for c in r.cut or []} | unlearned),
        "n_cut": len(r.cut or []),
        "received_at": r.received_at.isoformat(),
        "effective_at": _iso(r.effective_at),
        "completed_at": _iso(r.completed_at),
        "due_at": r.due_at.isoformat(),
        "time_to_effective_s": _seconds(r.received_at, r.effective_at),
        "time_to_completed_s": _seconds(r.received_at, r.completed_at),
        "deadline": deadline,
    }


def _over_time(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Requests per received day (week or month over long spans), split by current state."""
    days = [dt.date.fromisoformat(i["received_at"][:10]) for i in items]
    span = (max(days) - min(days)).days if days else 0
    bucket = "day" if span <= 62 else "week" if span <= 400 else "month"
    counts: dict[str, Counter[str]] = {}
    for day, item in zip(days, items, strict=True):
        if bucket == "week":
            day -= dt.timedelta(days=day.weekday())
        elif bucket == "month":
            day = day.replace(day=1)
        counts.setdefault(day.isoformat(), Counter())[item["state"]] += 1
    rows = [{"start": k} | {s: c[s] for s in REQUEST_STATES} for k, c in sorted(counts.items())]
    return {"bucket": bucket, "buckets": rows}


def _distribution(values: Any) -> dict[str, Any]:
    xs = sorted(float(v) for v in values if v is not None)
    if not xs:
        return {"n": 0, "min": None, "median": None, "p95": None, "max": None, "values": []}
    p95 = xs[math.ceil(0.95 * len(xs)) - 1]  # nearest rank
    return {
        "n": len(xs),
        "min": xs[0],
        "median": statistics.median(xs),
        "p95": p95,
        "max": xs[-1],
        "values": xs,
    }


def _at(text: str) -> dt.datetime:
    at = dt.datetime.fromisoformat(text)
    return at if at.tzinfo is not None else at.replace(tzinfo=dt.UTC)


def _events(
    session: Session, start: dt.datetime | None, end: dt.datetime | None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Served depth per model from ``routing.published`` events that carry ``served`` (the
    last one before ``start`` opens the series), accuracy from ``model.evaluated``."""
    served: dict[int, list[tuple[dt.datetime, dict[str, Any]]]] = {}
    accuracy: dict[int, list[dict[str, Any]]] = {}
    rows = session.execute(
        select(AuditEventRow.at, AuditEventRow.kind, AuditEventRow.data)
        .where(AuditEventRow.kind.in_(("routing.published", "model.evaluated")))
        .order_by(AuditEventRow.seq)
    )
    for text, kind, data in rows:
        at = _at(text)
        if end is not None and at >= end:
            continue
        model = int(data["model"])
        if kind == "routing.published" and isinstance(data.get("served"), list):
            depths = [{"shard": int(x["shard"]), "depth": int(x["depth"])} for x in data["served"]]
            point = {
                "at": at.isoformat(),
                "routing_version": int(data["routing_version"]),
                "served": sorted(depths, key=lambda x: x["shard"]),
            }
            served.setdefault(model, []).append((at, point))
        elif kind == "model.evaluated" and (start is None or at >= start):
            total, correct = int(data["n_total"]), int(data["n_correct"])
            accuracy.setdefault(model, []).append(
                {
                    "at": at.isoformat(),
                    "routing_version": int(data["routing_version"]),
                    "dataset": str(data.get("dataset", "")),
                    "n_correct": correct,
                    "n_total": total,
                    "accuracy": None if total == 0 else correct / total,
                    "per_class": _per_class(data.get("per_class")),
                }
            )
    series = []
    for model, points in sorted(served.items()):
        points.sort(key=lambda p: p[0])
        before = [p for at, p in points if start is not None and at < start]
        inside = [p for at, p in points if start is None or at >= start]
        series.append({"model": model, "points": before[-1:] + inside})
    for evaluations in accuracy.values():
        evaluations.sort(key=lambda p: (p["routing_version"], p["at"]))
    return series, [{"model": m, "points": p} for m, p in sorted(accuracy.items())]


def _per_class(counts: Any) -> list[dict[str, Any]]:
    """Per-label accuracy of one evaluation (events before per-label counts carry none)."""
    out = []
    for c in counts if isinstance(counts, list) else []:
        total, correct = int(c["n_total"]), int(c["n_correct"])
        out.append(
            {
                "label": str(c["label"]),
                "n_correct": correct,
                "n_total": total,
                "accuracy": None if total == 0 else correct / total,
            }
        )
    return out


def _art30(session: Session) -> dict[str, Any]:
    """What data (datasets and their records), which models, and what erasure leaves behind."""
    counts = Counter(
        {
            (d, state): n
            for d, state, n in session.execute(
                select(RecordRow.dataset_id, RecordRow.state, func.count()).group_by(
                    RecordRow.dataset_id, RecordRow.state
                )
            )
        }
    )
    subjects = {
        d: n
        for d, n in session.execute(
            select(RecordRow.dataset_id, func.count(func.distinct(RecordRow.subject_key)))
            .where(RecordRow.subject_key.is_not(None))
            .group_by(RecordRow.dataset_id)
        )
    }
    datasets = [
        {
            "name": d.name,
            "kind": d.kind,
            "labels": list(d.label_names),
            "imported_at": d.created_at.isoformat(),
            "records_active": counts[(d.id, RecordState.ACTIVE)],
            "records_erased": counts[(d.id, RecordState.ERASED)],
            "subjects": subjects.get(d.id, 0),
        }
        for d in session.scalars(select(DatasetRow).order_by(DatasetRow.id))
    ]
    names = {d.id: d.name for d in session.scalars(select(DatasetRow))}
    models = [
        {
            "id": m.id,
            "dataset": names.get(m.dataset_id),
            "kind": m.kind,
            "family": m.family,
            "status": m.status,
            "n_shards": m.n_shards,
            "n_slices": m.config.get("n_slices"),
            "budget": m.budget,
            "routing_version": m.routing_version,
            "config_hash": m.config_hash,
            "created_at": m.created_at.isoformat(),
        }
        for m in session.scalars(select(ModelRow).order_by(ModelRow.id))
    ]
    head = session.execute(
        select(AuditEventRow.seq, AuditEventRow.hash).order_by(AuditEventRow.seq.desc()).limit(1)
    ).first()
    return {
        "datasets": datasets,
        "models": models,
        "tombstones": {
            "n_erased": sum(d["records_erased"] for d in datasets),
            "kept": list(TOMBSTONE_KEPT),
            "removed": ["payload"],
            "destroyed": ["data key"],
            "retention": RETENTION,
            "mechanism": MECHANISM,
        },
        "erasure_deadline": "one calendar month after receipt (GDPR Art. 12(3))",
        "completion": COMPLETION,
        "audit_chain": {
            "events": 0 if head is None else head[0],
            "head": None if head is None else head[1],
        },
    }
