"""The typed views the application layer returns and both front ends print.

Each view is validated from the dict the lineage read functions build, with the same keys in
the same order. Keys that a dict leaves out on some answers (``not_found``, ``note``,
``model_version``, ``completions``) are optional fields with a ``None`` default: the API
renders with ``response_model_exclude_unset`` and :func:`plain` dumps with
``exclude_unset``, so such a key appears exactly when the dict had it. Timestamps stay the
ISO strings the DB layer wrote and numbers of free-form dicts stay ``Any``, so the JSON is
byte for byte what the dicts gave.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter


class View(BaseModel):
    model_config = ConfigDict(frozen=True)


def plain(view: BaseModel) -> dict[str, Any]:
    """The view as the dict it was built from (the keys it was given, nothing added)."""
    return view.model_dump(exclude_unset=True)


class JobProgress(View):
    done: int
    total: int


class JobView(View):
    id: int
    kind: str
    state: str
    sequence_id: int | None
    from_step: int | None
    params: dict[str, Any] | None
    attempts: int
    progress: JobProgress
    error: str | None = Field(description="the last line of the last failure")


class TimelineEntry(View):
    state: str
    at: str


class Cut(View):
    """A sequence of an exact model cut back by a deletion, and the retrain job it queued."""

    model: int
    shard: int
    sequence: int
    from_depth: int
    to_depth: int
    job: int


class VersionView(View):
    """A version of an approximate model."""

    version: int
    state: str
    method: str
    exact: bool
    sha256: str
    data_version: int
    evidence: dict[str, Any] | None
    created_at: str
    published_at: str | None


class UnlearnAttempt(View):
    model: int
    job: int
    job_state: str
    method: str
    exact: bool
    version: VersionView | None
    note: str | None = None


class Actor(View):
    """A principal as events and requests record it: never a token or its hash."""

    type: str = Field(description="key, cli, system or status_token")
    id: str = Field(description="the key id, the OS user of the CLI, or the component")
    name: str


class KeyView(View):
    """An API key as listed: never its token or the token's hash."""

    key_id: str
    name: str
    role: str | None
    scopes: list[str]
    created_at: str
    created_by: Actor
    expires_at: str | None
    last_used_at: str | None = Field(description="updated at most once a minute")
    revoked_at: str | None


class NewKeyView(View):
    key: KeyView
    token: str = Field(description="the bearer token: shown this once, stored only as a hash")


class RequestView(View):
    """A deletion request with its state timeline, jobs and unlearning attempts."""

    id: str
    state: str
    method: str
    outcome: str | None
    reason: str | None
    dataset: str | None
    record_ids: list[str] | None
    subject: bool
    requested_by: Actor | None = Field(
        description="who filed it (null: filed before access control)"
    )
    n_records: int
    cut: list[Cut]
    received_at: str
    effective_at: str | None
    completed_at: str | None
    due_at: str
    timeline: list[TimelineEntry]
    jobs: list[JobView]
    unlearning: list[UnlearnAttempt]
    not_found: list[str] | None = Field(
        None,
        description="the record ids it named that matched no record (absent when every one "
        "matched or it named a subject)",
    )
    status_token: str | None = Field(
        None,
        description="in the 202 only: a bearer token that reads this request and its "
        "certificate and nothing else, for the data subject (shown once; a replay of the "
        "same Idempotency-Key issues a new one and the old one stops working)",
    )


class Accepted(View):
    """The answer of a deletion: its request, whether it replays an earlier one."""

    request: RequestView
    replayed: bool
    not_found: tuple[str, ...]
    status_token: str | None = None


class RequestPage(View):
    items: list[RequestView]
    next_cursor: str | None = Field(description="pass back as `cursor` for the next page")


class SequenceView(View):
    position: int
    permutation: list[int]
    valid_depth: int


class ShardView(View):
    shard: int
    served_sequence: int | None
    served_depth: int
    health: Literal["full", "degraded", "dead", "empty"] = Field(
        description="full: every step served; degraded: a clean prefix; dead: no clean "
        "step; empty: every record of the served prefix erased (left out of the ensemble)"
    )
    sequences: list[SequenceView]


class LabelCount(View):
    """One label's training records in a model (``service.usecases.labels``)."""

    label: str
    trained: int = Field(description="training records of this label, erased or not")
    active: int = Field(description="those not erased")
    warning: str | None = Field(
        None, description="set when no active record is left, or under 5% of `trained`"
    )


class S3TStatus(View):
    """An exact S3T model: per shard its sequences, served depth and health. ``status`` is
    ``pending``, ``training`` or ``failed`` as stored, else the model's health: ``ready``
    (every shard at full depth), ``degraded`` or ``unavailable`` (no shard serves)."""

    id: int
    kind: Literal["s3t"]
    status: str
    error: str | None
    routing_version: int
    n_shards: int
    n_slices: int
    budget: int
    selection: str
    config_hash: str
    shards: list[ShardView]
    jobs: list[JobView] = Field(description="queued and running jobs, oldest first")
    failed_jobs: list[JobView] = Field(
        description="model incidents still open: the newest failed job of each sequence "
        "(or training) that no later job of it has since finished"
    )
    labels: list[LabelCount] = Field(
        default_factory=list, description="per label of the training dataset, in label order"
    )


class ApproximateStatus(View):
    """An approximate model: its family, unlearning method and versions."""

    id: int
    kind: Literal["approximate"]
    status: str
    error: str | None
    routing_version: int
    family: str | None
    method: str | None
    config: dict[str, Any]
    config_hash: str
    live_version: int | None
    versions: list[VersionView]
    jobs: list[JobView]
    labels: list[LabelCount] = Field(
        default_factory=list, description="per label of the training dataset, in label order"
    )


ModelStatus = Annotated[S3TStatus | ApproximateStatus, Field(discriminator="kind")]
MODEL_STATUS: TypeAdapter[S3TStatus | ApproximateStatus] = TypeAdapter(ModelStatus)


class DatasetSummary(View):
    name: str
    kind: str
    label_names: list[str]
    n_records: int
    n_erased: int


class Route(View):
    shard: int
    sequence: int | None
    depth: int


class Prediction(View):
    labels: list[str]
    probabilities: list[list[float]]
    routing_version: int
    routes: list[Route]
    model_version: int | None = Field(
        None, description="approximate models: the live version that answered"
    )
    completions: list[str] | None = Field(None, description="the language model's answer")
    label_names: list[str] | None = Field(
        None, description="classifiers: the label of each column of `probabilities`, in order"
    )


class ShapedCheckpoint(View):
    sha256: str
    step: int
    slices: list[int]
    state: str
    served: bool


class Placement(View):
    model: int
    shard: int
    slice: int
    erased_version: int | None
    checkpoints: list[ShapedCheckpoint]


class LineageView(View):
    """Where a record sits in every model and which checkpoints it shaped."""

    dataset: str
    record_id: str
    state: str
    content_hmac: str
    erased_at: str | None
    models: list[Placement]


class SliceCount(View):
    shard: int
    slice: int
    active: int
    erased: int


class PlacedRecord(View):
    record_id: str
    shard: int
    slice: int


class PlacementPage(View):
    """What sits in a model's shards and slices: counts per slice (every slice the filter
    names) and a page of the active records' ids, ordered by shard, slice, import order."""

    model: int
    routing_version: int
    shard: int | None = Field(description="the shard filter (null: every shard)")
    slice: int | None = Field(description="the slice filter (null: every slice)")
    active: int = Field(description="active records in the slices listed")
    erased: int = Field(description="erased records (tombstones) placed in them")
    slices: list[SliceCount]
    records: list[PlacedRecord] = Field(description="this page of the active records")
    next_cursor: str | None = Field(description="pass back as `cursor` for the next page")


class VerifyReport(View):
    checked_models: int
    checked_checkpoints: int
    violations: list[str]
    ok: bool


class ErasureScanView(View):
    """``unlearn verify --erasure``: what was searched for, where, and what was found."""

    erased_records: int  # with text probes
    destroyed_keys: int
    unprobed_records: int  # erased before probes existed, or feature vectors: not checkable
    places: int
    bytes_scanned: int
    remnants: list[str]
    skipped: list[str]
    ok: bool


class Check(View):
    ok: bool
    error: str | None = None
    current: str | None = None
    degraded: list[int] | None = Field(
        default=None, description="models check: exact models serving below full depth"
    )
    unavailable: list[int] | None = Field(
        default=None, description="models check: models that cannot answer predict now"
    )


class Readiness(View):
    """Ready to accept deletions (the database answers at the schema's head); ``degraded``
    names the other checks that fail (``broker``: jobs wait in the outbox; ``models``: some
    model cannot serve), which never make the service unready."""

    status: Literal["ready"]
    checks: dict[str, Check]
    degraded: list[str] = Field(default_factory=list)


class Liveness(View):
    status: Literal["ok"]


class DemoTargets(View):
    """What the curl examples of ``unlearn serve`` point at."""

    model_id: int | None
    record_id: str | None
