"""The registry of model kinds, by the name stored in ``models.kind``."""

from __future__ import annotations

from collections.abc import Mapping

from service.approximate.kind import ApproximateKind
from service.db.tables import ModelRow
from service.exact.kind import ExactKind
from service.jobs.attempt import Runner
from service.kind import ModelKind
from service.lineage.errors import LineageError
from service.states import KindName

KINDS: Mapping[str, ModelKind] = {
    KindName.S3T: ExactKind(),
    KindName.APPROXIMATE: ApproximateKind(),
}


def kind_of(model: ModelRow) -> ModelKind:
    """The kind that owns ``model``."""
    kind = KINDS.get(model.kind)
    if kind is None:
        raise LineageError(f"model {model.id} has an unknown kind {model.kind!r}")
    return kind


def job_runners() -> dict[str, Runner]:
    """Every job kind of every model kind, with its runner (a job kind belongs to one)."""
    runners: dict[str, Runner] = {}
    for kind in KINDS.values():
        for job_kind, runner in kind.runners().items():
            if job_kind in runners:
                raise ValueError(f"job kind {job_kind!r} is claimed by two model kinds")
            runners[job_kind] = runner
    return runners
