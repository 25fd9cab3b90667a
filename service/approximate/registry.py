"""Registering an approximate model: family, default method, held-out set, and a ``fit`` job."""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.approximate.base import UnlearningError
from models.approximate.families import dataset_problem, family_kind, make_family
from models.approximate.methods import get_method, method_names
from models.approximate.names import DEFAULT_METHOD
from models.approximate.thresholds import EvidenceThresholds
from models.config import canonical_json
from service.audit import log as audit
from service.db.tables import ModelRow, RecordRow
from service.erasure import vault
from service.jobs.create import fit_job
from service.lineage.datasets import get_dataset
from service.lineage.errors import Unprocessable
from service.lineage.registry import held_out_id, place_in_one_cell


@dataclass(frozen=True)
class ApproximateSpec(EvidenceThresholds):
    """``eval_dataset`` is required: the evidence compares the forget set with unseen data.
    The evidence thresholds (keyword-only) are :class:`EvidenceThresholds`'s fields."""

    family: str
    eval_dataset: str
    method: str | None = None
    family_params: dict[str, Any] = field(default_factory=dict)
    method_params: dict[str, Any] = field(default_factory=dict)
    seed: int = 0


def method_name(name: str) -> str:
    """The registry's spelling of a method name given in any case."""
    for known in method_names():
        if known.lower() == name.lower():
            return known
    raise Unprocessable(f"unknown unlearning method {name!r}; known: {', '.join(method_names())}")


def check_method(family: str, name: str, params: dict[str, Any]) -> str:
    """The method's registry name if it fits the family and takes ``params``."""
    name = method_name(name)
    method = get_method(name)
    task = family_kind(family).task
    if task not in method.tasks:
        raise Unprocessable(
            f"{name} does not apply to {family} ({task}); it works on "
            f"{' and '.join(sorted(method.tasks))} models"
        )
    try:
        method.params(params)
    except UnlearningError as exc:
        raise Unprocessable(str(exc)) from exc
    return name


def create_approximate_model(
    session: Session, dataset_name: str, spec: ApproximateSpec
) -> ModelRow:
    dataset = get_dataset(session, dataset_name)
    try:
        kind = family_kind(spec.family)
    except UnlearningError as exc:
        raise Unprocessable(str(exc)) from exc
    records = session.execute(
        select(RecordRow.id, RecordRow.payload).where(
            RecordRow.dataset_id == dataset.id, RecordRow.state == "active"
        )
    ).all()
    if not records:
        raise Unprocessable(f"dataset {dataset_name!r} has no active records")
    first = vault.open_payload(session, records[0][1]) if records[0][1] else None
    features = None if first is None else first.get("features")
    problem = dataset_problem(
        spec.family,
        dataset.kind,
        len(dataset.label_names),
        None if features is None else len(features),
    )
    if problem is not None:
        raise Unprocessable(f"{dataset_name}: {problem}")
    try:
        make_family(spec.family, spec.family_params, len(dataset.label_names))
    except (UnlearningError, TypeError) as exc:
        raise Unprocessable(str(exc)) from exc
    method = check_method(spec.family, spec.method or DEFAULT_METHOD[kind.task], spec.method_params)
    for name in ("auc_margin", "auc_z", "max_test_drop", "max_retain_nll_rise"):
        if getattr(spec, name) < 0:
            raise Unprocessable(f"{name} must be >= 0")
    if spec.evidence_retain < 1:
        raise Unprocessable("evidence_retain must be >= 1")
    eval_id = held_out_id(session, dataset, spec.eval_dataset)
    config = {
        "family": spec.family,
        "family_params": dict(spec.family_params),
        "method_params": dict(spec.method_params),
        "seed": spec.seed,
        **{f.name: getattr(spec, f.name) for f in dataclasses.fields(EvidenceThresholds)},
    }
    model = ModelRow(
        dataset_id=dataset.id,
        kind="approximate",
        family=spec.family,
        method=method,
        status="pending",
        n_shards=1,
        budget=1,
        selection="none",
        config=config,
        config_hash=hashlib.sha256(canonical_json(config).encode()).hexdigest(),
        routing_version=0,
        eval_dataset_id=eval_id,
    )
    session.add(model)
    session.flush()
    place_in_one_cell(session, model.id, [pk for pk, _ in records])
    fit_job(session, model.id)
    session.flush()
    audit.append(
        session,
        "model.registered",
        {
            "model": model.id,
            "kind": "approximate",
            "dataset": dataset_name,
            "config_hash": model.config_hash,
            "family": spec.family,
            "method": method,
            "n_records": len(records),
        },
    )
    return model
