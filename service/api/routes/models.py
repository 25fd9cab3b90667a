"""``/v1/models``: register an S3T or approximate model, read its status, predict."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from service.access.scopes import Scope
from service.api.auth import Scoped
from service.api.contract import BODY, problems
from service.api.schemas import (
    MAX_INT,
    ApproximateModelCreate,
    ModelCreate,
    ModelId,
    PredictRequest,
)
from service.core import Service
from service.lineage.errors import Unprocessable
from service.views import ModelStatus, PlacementPage, Prediction

router = APIRouter()


CREATE = problems(*BODY, 404, s403="the key lacks the scope, or has registered its cap of models")


@router.post(
    "/models",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ModelStatus,
    responses=CREATE,
)
def create_model(
    svc: Annotated[Service, Scoped(Scope.MODELS_WRITE)], response: Response, body: ModelCreate
) -> ModelStatus:
    """Register a model and queue its training; poll ``GET /v1/models/{id}``."""
    from models.config import TrainConfig

    if body.backbone is not None:
        _check_backbone_folder(svc, body.backbone)
    try:
        config = TrainConfig(
            n_slices=body.slices,
            rank=body.rank,
            lora_targets=body.lora_targets,
            alpha=body.alpha,
            lr=body.lr,
            weight_decay=body.weight_decay,
            epochs=body.epochs,
            batch_size=body.batch_size,
            max_length=body.max_length,
            seed=body.seed,
        )
    except ValueError as exc:
        raise Unprocessable(str(exc)) from exc
    model_id = svc.create_s3t_model(
        body.dataset,
        shards=body.shards,
        budget=body.budget,
        selection=body.selection,
        deletion_probs=None if body.deletion_probs is None else tuple(body.deletion_probs),
        config=config,
        backbone=body.backbone,
        eval_dataset=body.eval_dataset,
    )
    response.headers["Location"] = f"/v1/models/{model_id}"
    return svc.model_status(model_id)


def _check_backbone_folder(svc: Service, backbone: str) -> None:
    """An API caller names only model folders the operator put under
    ``UNLEARN_BACKBONE_DIRS``: the path must not let it probe the server's files."""
    from pathlib import Path

    from models.folders import is_folder_ref

    if not is_folder_ref(backbone):
        return
    roots = svc.settings.backbone_roots
    path = Path(backbone).expanduser()
    resolved = path.resolve() if path.is_absolute() else None
    if resolved is None or not any(resolved.is_relative_to(root) for root in roots):
        raise Unprocessable(
            "a backbone folder must be an absolute path inside UNLEARN_BACKBONE_DIRS ("
            + ", ".join(str(r) for r in roots)
            + ")"
        )


@router.post(
    "/models/approximate",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ModelStatus,
    responses=CREATE,
)
def create_approximate_model(
    svc: Annotated[Service, Scoped(Scope.MODELS_WRITE)],
    response: Response,
    body: ApproximateModelCreate,
) -> ModelStatus:
    """Register a model trained normally on all the data; a deletion runs its unlearning
    method and publishes a new version (or asks for review when the evidence is flagged)."""
    from service.approximate.registry import ApproximateSpec

    spec = ApproximateSpec(**body.model_dump(exclude={"dataset"}))
    model_id = svc.create_approximate_model(body.dataset, spec)
    response.headers["Location"] = f"/v1/models/{model_id}"
    return svc.model_status(model_id)


@router.get("/models/{model_id:int}", response_model=ModelStatus, responses=problems(404, 422))
def read_model(
    svc: Annotated[Service, Scoped(Scope.MODELS_READ)], model_id: ModelId
) -> ModelStatus:
    return svc.model_status(model_id)


@router.get(
    "/models/{model_id:int}/placements",
    response_model=PlacementPage,
    responses=problems(
        404, 422, s404="no such model, no such shard or slice, or a cursor this list did not give"
    ),
)
def list_placements(
    svc: Annotated[Service, Scoped(Scope.PLACEMENTS_READ)],
    model_id: ModelId,
    shard: Annotated[int | None, Query(ge=0, le=MAX_INT, description="only this shard")] = None,
    slice_: Annotated[
        int | None, Query(alias="slice", ge=0, le=MAX_INT, description="only this slice")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=10000, description="record ids per page")] = 1000,
    cursor: Annotated[str | None, Query(pattern="^[A-Za-z0-9_-]{1,128}$")] = None,
) -> PlacementPage:
    """Active and erased counts per shard and slice, and a page of the active records'
    ids; pass ``next_cursor`` back as ``cursor`` for the next page."""
    return svc.placements(model_id, shard=shard, slice_=slice_, limit=limit, cursor=cursor)


@router.post(
    "/models/{model_id:int}/predict",
    response_model=Prediction,
    response_model_exclude_unset=True,
    responses=problems(
        *BODY,
        404,
        409,
        503,
        s409="the model has not finished its first training",
        s503="the model serves nothing now (every shard retraining): Retry-After estimates "
        "from its job queue when it serves again",
    ),
)
def predict(
    svc: Annotated[Service, Scoped(Scope.PREDICT)], model_id: ModelId, body: PredictRequest
) -> Prediction:
    return svc.predict(model_id, body.inputs)
