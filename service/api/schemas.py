"""Request bodies of the API (responses are plain JSON views of the lineage DB)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from service.lineage.deletion import MAX_RECORD_IDS

MAX_PREDICT_INPUTS = 256


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelCreate(Strict):
    dataset: str = Field(min_length=1, max_length=200)
    shards: int = Field(2, ge=1, le=64)
    slices: int = Field(4, ge=1, le=12, description="slices per shard = LoRA layer groups")
    budget: int = Field(2, ge=1, le=24, description="sequences (slice orders) per shard")
    selection: Literal["cyclic", "bms"] = "cyclic"
    deletion_probs: list[float] | None = Field(
        None, description="per-slice deletion prior (BMS only)"
    )
    rank: int = Field(8, ge=1, le=256)
    alpha: float = Field(16.0, gt=0)
    lr: float = Field(2e-3, gt=0, le=1)
    epochs: int = Field(2, ge=1, le=100)
    batch_size: int = Field(32, ge=1, le=4096)
    max_length: int = Field(64, ge=2, le=512)
    seed: int = 0
    eval_dataset: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        description="held-out dataset scored after training and after every retrain",
    )


class PredictRequest(Strict):
    inputs: list[str | list[float]] = Field(min_length=1, max_length=MAX_PREDICT_INPUTS)


class DeletionCreate(Strict):
    subject_id: str | None = Field(None, min_length=1, max_length=500)
    record_ids: list[str] | None = Field(None, min_length=1, max_length=MAX_RECORD_IDS)
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
    family: Literal["cnn-mnist", "minilm-lora-all", "gpt2-tiny"]
    eval_dataset: str = Field(
        min_length=1, max_length=200, description="held-out dataset the evidence compares with"
    )
    method: str | None = Field(
        None, max_length=32, description="unlearning method (default: l1-sparse / NPO for the LM)"
    )
    family_params: dict[str, int | float] = Field(default_factory=dict)
    method_params: dict[str, Any] = Field(default_factory=dict)
    seed: int = 0
    auc_margin: float = Field(0.05, ge=0, le=0.5)
    auc_z: float = Field(
        1.96, ge=0, le=10, description="widen the margin to this many standard errors of the AUC"
    )
    max_test_drop: float = Field(5.0, ge=0, le=100)
    max_retain_nll_rise: float = Field(0.10, ge=0)
    evidence_retain: int = Field(1000, ge=1, le=100_000)


class ResolveRequest(Strict):
    """An operator's decision on a request in ``needs_review``."""

    action: Literal["accept", "method", "retrain"]
    method: str | None = Field(None, max_length=32, description="with action 'method'")
    params: dict[str, Any] | None = Field(None, description="the method's hyperparameters")
