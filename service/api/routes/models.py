"""``/v1/models``: register an S3T or approximate model, read its status, predict."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Response, status

from service.access.scopes import Scope
from service.api.auth import Scoped
from service.api.contract import BODY, problems
from service.api.schemas import ApproximateModelCreate, ModelCreate, ModelId, PredictRequest
from service.core import Service
from service.lineage.errors import Unprocessable
from service.views import ModelStatus, Prediction

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
    from service.lineage.registry import ModelSpec

    try:
        config = TrainConfig(
            n_slices=body.slices,
            rank=body.rank,
            alpha=body.alpha,
            lr=body.lr,
            epochs=body.epochs,
            batch_size=body.batch_size,
            max_length=body.max_length,
            seed=body.seed,
        )
    except ValueError as exc:
        raise Unprocessable(str(exc)) from exc
    probs = None if body.deletion_probs is None else tuple(body.deletion_probs)
    spec = ModelSpec(body.shards, body.budget, body.selection, probs, config, body.eval_dataset)
    model_id = svc.create_model(body.dataset, spec)
    response.headers["Location"] = f"/v1/models/{model_id}"
    return svc.model_status(model_id)


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
