"""What a model kind is: the one protocol every kind implements (``service.kinds`` holds
the registry; ``service.exact`` and ``service.approximate`` the two kinds).

A kind decides what a deletion does to its models (inside the accepting transaction), how
its models look in a status view, what ``unlearn verify`` checks for them, what their
entry in a deletion certificate says, how they serve predictions and which job runners
they bring. Nothing outside the kinds branches on ``models.kind``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy.orm import Session

from service.db.tables import DeletionRequestRow, JobRow, ModelRow, RecordRow
from service.states import KindName

if TYPE_CHECKING:
    from models.checkpoints import LocalCheckpointStore
    from service.db.engine import Database
    from service.jobs.attempt import Runner
    from service.lineage.served import Route
    from service.settings import Settings


@dataclass
class DeletionEffect:
    """What a deletion did to one model: the sequences it cut (S3T), the jobs the request
    now waits on, the checkpoint files to delete after the commit, and whether the model
    still serves weights trained on the records until a job publishes (approximate)."""

    cuts: list[dict[str, object]] = field(default_factory=list)
    jobs: set[int] = field(default_factory=set)
    retired: list[str] = field(default_factory=list)
    unlearning: bool = False


@dataclass(frozen=True)
class Erasure:
    """One accepted request (its row id) and the active records it erases."""

    request_id: int
    records: Sequence[RecordRow]


@dataclass(frozen=True)
class Hit:
    """One accepted request's erasure in one model: ``deleted`` maps each shard to the
    slices that lost records."""

    request: DeletionRequestRow
    deleted: Mapping[int, set[int]]


@dataclass
class Report:
    """What ``unlearn verify`` found."""

    checked_models: int = 0
    checked_checkpoints: int = 0
    violations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations


@dataclass(frozen=True)
class VerifyContext:
    """Where ``unlearn verify`` looks: the checkpoint store (its root also holds the
    approximate versions) and, optionally, the activation-cache root."""

    store: LocalCheckpointStore
    caches: Path | None = None


@dataclass(frozen=True)
class Prediction:
    labels: list[str]
    probabilities: list[list[float]]
    routing_version: int
    routes: list[Route]
    model_version: int | None = None  # approximate models: the live version that answered
    completions: list[str] | None = None  # the language model's answer
    label_names: list[str] = field(default_factory=list)  # the class of each probability column


class Loaded(Protocol):
    """A model loaded for serving at one routing version."""

    @property
    def version(self) -> int: ...

    @property
    def data_kind(self) -> str: ...

    def answer(self, inputs: Sequence[object]) -> Prediction: ...


@dataclass
class ServeContext:
    """What loading a model for serving may use, shared by all models of one server: the
    database (a kind reads in its own snapshot), the settings, the checkpoint store and
    per-kind caches (e.g. one encoder per model)."""

    db: Database
    settings: Settings
    store: LocalCheckpointStore
    cache: dict[str, Any] = field(default_factory=dict)


class ModelKind(Protocol):
    """One model kind. Implementations are plain classes (structural typing), registered
    by name in ``service.kinds``."""

    name: KindName

    def before_erasure(self, s: Session, erasures: Sequence[Erasure]) -> None:
        """In the accepting transaction, before the records' payloads are nulled: each
        request accepted together with the records it erases."""

    def on_deletion(self, s: Session, model: ModelRow, hits: Sequence[Hit]) -> list[DeletionEffect]:
        """In the accepting transaction, the model row locked, its routing version bumped
        and the placements stamped: what the requests accepted together (one or more, in
        order) do to the model; one effect per hit, in order."""
        ...

    def status(self, s: Session, model: ModelRow) -> dict[str, Any]:
        """The model's status view (``GET /v1/models/{id}``, ``unlearn status``)."""
        ...

    def request_attempts(self, s: Session, jobs: Sequence[JobRow]) -> list[dict[str, Any]]:
        """Per-request unlearning attempts shown in the request view (``unlearning``), from
        the jobs the request waits on (in id order)."""
        ...

    def verify(self, s: Session, ctx: VerifyContext, model: ModelRow, report: Report) -> None:
        """Add what ``unlearn verify`` finds wrong with one model of this kind to ``report``."""
        ...

    def verify_store(self, s: Session, ctx: VerifyContext, report: Report) -> None:
        """Kind-wide checks: files or rows of erased data this kind may leave behind."""
        ...

    def certificate_entry(
        self,
        s: Session,
        request: DeletionRequestRow,
        model: ModelRow,
        erased_version: int | None,
    ) -> dict[str, Any]:
        """The model's entry in the request's deletion certificate."""
        ...

    def load(self, model_id: int, ctx: ServeContext) -> Loaded:
        """Load the model for serving at its current routing version."""
        ...

    def runners(self) -> Mapping[str, Runner]:
        """The job kinds this model kind brings, each with its runner."""
        ...

    def on_job_failed(self, s: Session, job: JobRow) -> None:
        """A job of a model of this kind failed for good (its requests are settled next)."""
        ...
