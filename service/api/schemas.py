"""Request bodies of the API (responses are plain JSON views of the lineage DB)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

from fastapi import Path
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from models.approximate.names import FAMILY_HELP, METHOD_HELP, FamilyName
from models.approximate.thresholds import DEFAULT_THRESHOLDS
from models.config import DEFAULT_TRAIN, TrainConfig, help_of
from service.access.scopes import ROLES, Scope
from service.lineage.deletion import MAX_RECORD_IDS

MAX_PREDICT_INPUTS = 256
# Ids are 64-bit signed integers in the database: a larger one is a 422, not a driver error.
MAX_INT = 2**63 - 1
MAX_SEED = 2**32 - 1  # what every random generator the trainers seed accepts


def utc(at: dt.datetime) -> dt.datetime:
    """Aware UTC (a naive bound is read as UTC). A bound UTC cannot hold (year 1 east of
    Greenwich, year 9999 west of it) is the earliest or latest instant."""
    if at.tzinfo is None:
        return at.replace(tzinfo=dt.UTC)
    try:
        return at.astimezone(dt.UTC)
    except OverflowError:
        return (dt.datetime.min if at.year == 1 else dt.datetime.max).replace(tzinfo=dt.UTC)


RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def _rfc3339(value: object) -> object:
    """Only what ``format: date-time`` promises: not a Unix time, a bare date or a local
    time (pydantic would take each)."""
    if isinstance(value, str) and not RFC3339.match(value):
        raise ValueError("expected an RFC 3339 date-time, e.g. 2025-01-31T00:00:00Z")
    return value


# A query bound: RFC 3339, returned in UTC.
Instant = Annotated[dt.datetime, BeforeValidator(_rfc3339), AfterValidator(utc)]
ModelId = Annotated[int, Path(ge=1, le=MAX_INT, description="the model's id")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _from(
    defaults: object,
    name: str,
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
) -> Any:
    """A field with the default and help text of field ``name`` of the dataclass instance
    ``defaults`` (``TrainConfig``'s or the evidence thresholds'); the API's ranges on top."""
    return Field(
        getattr(defaults, name), ge=ge, gt=gt, le=le, description=help_of(type(defaults), name)
    )


class ModelCreate(Strict):
    """The ranges are the API's; a deployment's caps on an API key's model (``UNLEARN_MAX_*``)
    may be lower, and a value past one is refused 422 naming the setting."""

    dataset: str = Field(min_length=1, max_length=200)
    shards: int = Field(2, ge=1, le=64)
    slices: int = _from(DEFAULT_TRAIN, "n_slices", ge=1, le=12)
    budget: int = Field(2, ge=1, le=24, description="sequences (slice orders) per shard")
    selection: Literal["cyclic", "bms"] = "cyclic"
    deletion_probs: list[float] | None = Field(
        None, description="per-slice deletion prior (BMS only)"
    )
    backbone: str | None = Field(
        None,
        min_length=1,
        max_length=1024,
        description=f"{help_of(TrainConfig, 'backbone')} (null: the dataset kind's default); "
        "a folder must be an absolute path inside UNLEARN_BACKBONE_DIRS",
    )
    rank: int = _from(DEFAULT_TRAIN, "rank", ge=1, le=256)
    lora_targets: Literal["attention", "all-linear"] = Field(
        "attention", description=help_of(TrainConfig, "lora_targets")
    )
    alpha: float = _from(DEFAULT_TRAIN, "alpha", gt=0)
    lr: float = _from(DEFAULT_TRAIN, "lr", gt=0, le=1)
    weight_decay: float = _from(DEFAULT_TRAIN, "weight_decay", ge=0, le=1)
    epochs: int = _from(DEFAULT_TRAIN, "epochs", ge=1, le=100)
    batch_size: int = _from(DEFAULT_TRAIN, "batch_size", ge=1, le=4096)
    max_length: int = _from(DEFAULT_TRAIN, "max_length", ge=2, le=512)
    seed: int = _from(DEFAULT_TRAIN, "seed", ge=0, le=MAX_SEED)
    eval_dataset: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        description="held-out dataset scored after training and after every retrain",
    )


class PredictRequest(Strict):
    inputs: list[str | list[float]] = Field(min_length=1, max_length=MAX_PREDICT_INPUTS)


# Not only whitespace (the lineage layer refuses a blank id).
NonBlank = Annotated[str, StringConstraints(min_length=1, pattern=r"\S")]


class DeletionCreate(Strict):
    """Exactly one of ``subject_id`` and ``record_ids`` (the other absent or null)."""

    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [
                {
                    "required": ["subject_id"],
                    "properties": {
                        "subject_id": {"type": "string"},
                        "record_ids": {"type": "null"},
                    },
                },
                {
                    "required": ["record_ids"],
                    "properties": {"record_ids": {"type": "array"}, "subject_id": {"type": "null"}},
                },
            ]
        }
    )

    subject_id: str | None = Field(None, min_length=1, max_length=500, pattern=r"\S")
    record_ids: list[NonBlank] | None = Field(None, min_length=1, max_length=MAX_RECORD_IDS)
    dataset: str | None = Field(None, min_length=1, max_length=200)
    reason: str | None = Field(None, max_length=2000)

    @model_validator(mode="after")
    def _one_target(self) -> DeletionCreate:
        if (self.subject_id is None) == (self.record_ids is None):
            raise ValueError("give exactly one of subject_id and record_ids")
        return self


class ApproximateModelCreate(Strict):
    """A model trained on all its data at once and unlearned approximately on deletion."""

    dataset: str = Field(min_length=1, max_length=200)
    family: FamilyName = Field(description=FAMILY_HELP)
    eval_dataset: str = Field(
        min_length=1, max_length=200, description="held-out dataset the evidence compares with"
    )
    method: str | None = Field(None, max_length=32, description=METHOD_HELP)
    family_params: dict[str, int | float] = Field(default_factory=dict)
    method_params: dict[str, Any] = Field(default_factory=dict)
    seed: int = Field(0, ge=0, le=MAX_SEED)
    auc_margin: float = _from(DEFAULT_THRESHOLDS, "auc_margin", ge=0, le=0.5)
    auc_z: float = _from(DEFAULT_THRESHOLDS, "auc_z", ge=0, le=10)
    max_test_drop: float = _from(DEFAULT_THRESHOLDS, "max_test_drop", ge=0, le=100)
    max_retain_nll_rise: float = _from(DEFAULT_THRESHOLDS, "max_retain_nll_rise", ge=0)
    evidence_retain: int = _from(DEFAULT_THRESHOLDS, "evidence_retain", ge=1, le=100_000)


class KeyCreate(Strict):
    """A role, at least one scope, or both."""

    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"required": ["role"], "properties": {"role": {"type": "string"}}},
                {"required": ["scopes"], "properties": {"scopes": {"minItems": 1}}},
            ]
        }
    )

    name: str = Field(min_length=1, max_length=200, description="who or what holds the key")
    role: str | None = Field(
        None,
        pattern="^(" + "|".join(ROLES) + ")$",
        description=", ".join(ROLES) + " (a scope bundle)",
    )
    scopes: list[Scope] = Field(
        default_factory=list, max_length=20, description="scopes on top of the role's"
    )
    expires_in_days: int | None = Field(None, ge=1, le=3650)


class ResolveRequest(Strict):
    """An operator's decision on a request in ``needs_review``."""

    action: Literal["accept", "method", "retrain"]
    method: str | None = Field(None, max_length=32, description="with action 'method'")
    params: dict[str, Any] | None = Field(None, description="the method's hyperparameters")
