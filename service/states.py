"""The project's vocabulary: model kinds and the states of requests, jobs, models,
checkpoints, approximate model versions and records.

Every state is a ``StrEnum``, so members compare equal to the strings stored in the lineage
DB and render as those strings in JSON.
"""

from enum import StrEnum


class KindName(StrEnum):
    """How a model unlearns (``models.kind``); each has one ``service.kinds.ModelKind``."""

    S3T = "s3t"  # exact: sharded, sliced, sequence-aware LoRA training
    APPROXIMATE = "approximate"  # trained on everything; an unlearning method on deletion


class RequestState(StrEnum):
    """The states a deletion request moves through, in order of its life."""

    RECEIVED = "received"
    EFFECTIVE = "effective"  # erased from storage and from every exact model's serving
    RETRAINING = "retraining"  # an exact model's cut sequences are being retrained
    UNLEARNING = "unlearning"  # an approximate model's unlearn job has not published yet
    NEEDS_REVIEW = "needs_review"  # an approximate result was flagged; an operator decides
    COMPLETED = "completed"
    FAILED = "failed"


REQUEST_STATES = tuple(s.value for s in RequestState)
CLOSED_REQUEST_STATES = (RequestState.COMPLETED, RequestState.FAILED)


class JobKind(StrEnum):
    TRAIN = "train"  # every shard of a new S3T model
    RETRAIN = "retrain"  # one cut S3T sequence from its cut step
    FIT = "fit"  # version 1 of an approximate model
    UNLEARN = "unlearn"  # an approximate model's method on a request's records
    PURGE = "purge"  # drop erased records' rows from a model's activation caches, at once


# Jobs that finish an erasure rather than retrain a model: they run on their own queue (never
# behind a training) and do not move their requests to ``retraining``.
ERASURE_JOB_KINDS = (JobKind.PURGE,)


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    SUPERSEDED = "superseded"  # a newer job of the same sequence took over its requests
    FAILED = "failed"


OPEN_JOB_STATES = (JobState.QUEUED, JobState.RUNNING)
FINAL_JOB_STATES = (JobState.DONE, JobState.SUPERSEDED, JobState.FAILED)


class ModelState(StrEnum):
    PENDING = "pending"
    TRAINING = "training"
    READY = "ready"
    FAILED = "failed"


class CheckpointState(StrEnum):
    """An S3T checkpoint (``checkpoints.state``); cut ones stay as lineage."""

    LIVE = "live"  # served
    RETIRED = "retired"  # cut: trained on a record since erased


class VersionState(StrEnum):
    """An approximate model's version (``model_versions.state``)."""

    LIVE = "live"  # served; one per model
    CANDIDATE = "candidate"  # flagged by its evidence; waits for an operator's review
    RETIRED = "retired"  # replaced by a newer version
    REJECTED = "rejected"  # an operator turned it down


class RecordState(StrEnum):
    """A training record (``records.state``)."""

    ACTIVE = "active"
    ERASED = "erased"  # payload gone, erased by a deletion request
