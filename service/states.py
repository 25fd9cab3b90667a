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
    # Before requests completed on erasure (CHANGELOG 0.x): an exact request waited for its
    # model's retrains. Kept for the rows and timelines of that time; nothing enters it now.
    RETRAINING = "retraining"
    UNLEARNING = "unlearning"  # an approximate model's unlearn job has not published yet
    NEEDS_REVIEW = "needs_review"  # an approximate result was flagged; an operator decides
    COMPLETED = "completed"
    FAILED = "failed"


REQUEST_STATES = tuple(s.value for s in RequestState)
CLOSED_REQUEST_STATES = (RequestState.COMPLETED, RequestState.FAILED)


class RequestOutcome(StrEnum):
    """What a completed request did (``deletion_requests.outcome``): the request view, the
    report and the certificate all state it; ``None`` until the request completes."""

    ERASED = "erased"  # its records erased and every model that held them cut or unlearned
    ALREADY_ERASED = "already_erased"  # every record it matched was erased before
    NO_MODEL_AFFECTED = "no_model_affected"  # erased; no model held them


class JobKind(StrEnum):
    TRAIN = "train"  # every shard of a new S3T model
    RETRAIN = "retrain"  # one cut S3T sequence from its cut step
    FIT = "fit"  # version 1 of an approximate model
    UNLEARN = "unlearn"  # an approximate model's method on a request's records
    PURGE = "purge"  # drop erased records' rows from a model's activation caches, at once


# Jobs that finish an erasure rather than retrain a model: they run on their own queue (never
# behind a training) and do not move their requests to ``retraining``.
ERASURE_JOB_KINDS = (JobKind.PURGE,)

# Model work: restoring an S3T model's served depth. A request is linked to such a job only
# when the job was already reading the request's records when the request was accepted; the
# request waits for it to stop (it removes any file of erased lineage it wrote), but the job's
# outcome, success or failure, is the model's, never the request's.
MODEL_WORK_JOB_KINDS = (JobKind.TRAIN, JobKind.RETRAIN)


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    SUPERSEDED = "superseded"  # a newer job of the same sequence took over its requests
    FAILED = "failed"


OPEN_JOB_STATES = (JobState.QUEUED, JobState.RUNNING)
FINAL_JOB_STATES = (JobState.DONE, JobState.SUPERSEDED, JobState.FAILED)


class ModelState(StrEnum):
    """Stored: ``pending``, ``training``, ``ready``, ``failed``. Reported for a trained S3T
    model instead of ``ready``: its health, ``degraded`` (some shard serves less than full
    depth) or ``unavailable`` (no shard serves; predict answers 503 with Retry-After)."""

    PENDING = "pending"
    TRAINING = "training"
    READY = "ready"
    FAILED = "failed"
    DEGRADED = "degraded"  # derived, never stored
    UNAVAILABLE = "unavailable"  # derived, never stored


class ShardHealth(StrEnum):
    """What one S3T shard serves (derived from its route)."""

    FULL = "full"  # every step
    DEGRADED = "degraded"  # a clean prefix: a deletion cut it, its retrain has not published
    DEAD = "dead"  # no clean step: left out of the ensemble
    EMPTY = "empty"  # every record of its served prefix erased: routed, left out


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
