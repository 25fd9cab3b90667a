"""The ``/v1`` endpoints."""

from __future__ import annotations

import base64
import datetime as dt
import re
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Header, Query, Request, Response, UploadFile, status
from sqlalchemy import select

from models.config import TrainConfig
from models.data import import_bytes
from service.api.schemas import (
    ApproximateModelCreate,
    DeletionCreate,
    ModelCreate,
    PredictRequest,
    ResolveRequest,
)
from service.approximate.registry import ApproximateSpec
from service.core import Service
from service.db.tables import DeletionRequestRow
from service.lineage.datasets import get_dataset, summarize
from service.lineage.deletion import DeletionInput
from service.lineage.errors import LineageError, Unprocessable
from service.lineage.query import certificate_document, get_request, model_status, request_view
from service.lineage.registry import ModelSpec, get_model
from service.serving import ModelServer
from service.states import REQUEST_STATES

router = APIRouter(prefix="/v1")
KEY = re.compile(r"^[\x21-\x7e]{1,200}$")
STATES = REQUEST_STATES


def _service(request: Request) -> Service:
    svc: Service = request.app.state.service
    return svc


def _server(request: Request) -> ModelServer:
    server: ModelServer = request.app.state.server
    return server


@router.post("/datasets", status_code=status.HTTP_201_CREATED)
async def create_dataset(
    request: Request,
    response: Response,
    name: Annotated[str, Form(min_length=1, max_length=200, pattern=r"^[\w.-]+$")],
    file: Annotated[UploadFile, File(description="CSV or JSON Lines")],
    format: Annotated[str | None, Form(pattern="^(csv|jsonl)$")] = None,
) -> dict[str, Any]:
    """Import a dataset: every row valid, or nothing stored (the error names the line)."""
    svc = _service(request)
    fmt = format or _format_from_name(file.filename)
    data = await file.read()
    dataset = import_bytes(data, fmt=fmt, name=name, source=file.filename or "upload")
    summary = svc.import_dataset(name, dataset)
    response.headers["Location"] = f"/v1/datasets/{name}"
    return summary.__dict__


def _format_from_name(filename: str | None) -> str:
    suffix = (filename or "").rsplit(".", 1)[-1].lower()
    if suffix in ("csv",):
        return "csv"
    if suffix in ("jsonl", "ndjson"):
        return "jsonl"
    raise Unprocessable("cannot tell the format from the file name: send format=csv|jsonl")


@router.get("/datasets/{name}")
def read_dataset(request: Request, name: str) -> dict[str, Any]:
    with _service(request).db.read() as s:
        return summarize(s, get_dataset(s, name)).__dict__


@router.post("/models", status_code=status.HTTP_202_ACCEPTED)
def create_model(request: Request, response: Response, body: ModelCreate) -> dict[str, Any]:
    """Register a model and queue its training; poll ``GET /v1/models/{id}``."""
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
    svc = _service(request)
    model_id = svc.create_model(body.dataset, spec)
    response.headers["Location"] = f"/v1/models/{model_id}"
    with svc.db.read() as s:
        return model_status(s, get_model(s, model_id))


@router.post("/models/approximate", status_code=status.HTTP_202_ACCEPTED)
def create_approximate_model(
    request: Request, response: Response, body: ApproximateModelCreate
) -> dict[str, Any]:
    """Register a model trained normally on all the data; a deletion runs its unlearning
    method and publishes a new version (or asks for review when the evidence is flagged)."""
    spec = ApproximateSpec(**body.model_dump(exclude={"dataset"}))
    svc = _service(request)
    model_id = svc.create_approximate_model(body.dataset, spec)
    response.headers["Location"] = f"/v1/models/{model_id}"
    with svc.db.read() as s:
        return model_status(s, get_model(s, model_id))


@router.get("/models/{model_id}")
def read_model(request: Request, model_id: int) -> dict[str, Any]:
    with _service(request).db.read() as s:
        return model_status(s, get_model(s, model_id))


@router.post("/models/{model_id}/predict")
def predict(request: Request, model_id: int, body: PredictRequest) -> dict[str, Any]:
    result = _server(request).predict(model_id, body.inputs)
    answer: dict[str, Any] = {
        "labels": result.labels,
        "probabilities": result.probabilities,
        "routing_version": result.routing_version,
        "routes": [r.__dict__ for r in result.routes],
    }
    if result.model_version is not None:
        answer["model_version"] = result.model_version
    if result.completions is not None:
        answer["completions"] = result.completions
    return answer


@router.post("/deletions", status_code=status.HTTP_202_ACCEPTED)
def create_deletion(
    request: Request,
    response: Response,
    body: DeletionCreate,
    idempotency_key: Annotated[str | None, Header()] = None,
) -> dict[str, Any]:
    """Erase a subject's or some records' data: effective when this answers (``202``)."""
    if idempotency_key is not None and not KEY.match(idempotency_key):
        raise LineageError("Idempotency-Key must be 1-200 visible ASCII characters")
    req = DeletionInput(
        subject_id=body.subject_id,
        record_ids=None if body.record_ids is None else tuple(body.record_ids),
        dataset=body.dataset,
        reason=body.reason,
    )
    view, replayed, not_found = _service(request).delete(req, idempotency_key)
    response.headers["Location"] = f"/v1/deletions/{view['id']}"
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    if not_found:
        view["not_found"] = list(not_found)
    return view


@router.get("/deletions/{public_id}")
def read_deletion(request: Request, public_id: str) -> dict[str, Any]:
    with _service(request).db.read() as s:
        return request_view(s, get_request(s, public_id))


@router.post("/deletions/{public_id}/resolve")
def resolve_deletion(request: Request, public_id: str, body: ResolveRequest) -> dict[str, Any]:
    """Decide a request in ``needs_review``: ``accept`` the flagged version, try another
    ``method``, or order the exact ``retrain`` from scratch (409 unless in review)."""
    return _service(request).resolve(public_id, body.action, body.method, body.params)


@router.get(
    "/deletions/{public_id}/certificate",
    response_class=Response,
    responses={
        200: {
            "content": {"application/json": {}},
            "description": "The signed certificate, byte for byte as issued (canonical JSON); "
            "verify it offline with `unlearn certificate verify FILE --public-key KEY`.",
        },
        404: {"description": "no such request"},
        409: {"description": "the request has not completed yet"},
    },
)
def read_certificate(request: Request, public_id: str) -> Response:
    with _service(request).db.read() as s:
        document = certificate_document(s, public_id)
    return Response(document.encode("utf-8"), media_type="application/json")


@router.get("/deletions")
def list_deletions(
    request: Request,
    state: Annotated[str | None, Query(pattern="^(" + "|".join(STATES) + ")$")] = None,
    received_after: dt.datetime | None = None,
    received_before: dt.datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
) -> dict[str, Any]:
    """Newest first; pass ``next_cursor`` back as ``cursor`` for the next page."""
    query = select(DeletionRequestRow).order_by(DeletionRequestRow.id.desc())
    if state is not None:
        query = query.where(DeletionRequestRow.state == state)
    if received_after is not None:
        query = query.where(DeletionRequestRow.received_at >= _aware(received_after))
    if received_before is not None:
        query = query.where(DeletionRequestRow.received_at < _aware(received_before))
    if cursor is not None:
        query = query.where(DeletionRequestRow.id < _decode_cursor(cursor))
    with _service(request).db.read() as s:
        rows = list(s.scalars(query.limit(limit + 1)))
        items = [request_view(s, r) for r in rows[:limit]]
    more = len(rows) > limit
    return {"items": items, "next_cursor": _encode_cursor(rows[limit - 1].id) if more else None}


def _aware(at: dt.datetime) -> dt.datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=dt.UTC)


def _encode_cursor(row_id: int) -> str:
    return base64.urlsafe_b64encode(f"d:{row_id}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, value = raw.partition(":")
        if kind != "d":
            raise ValueError(kind)
        return int(value)
    except (ValueError, UnicodeDecodeError) as exc:
        raise LineageError("cursor is not valid") from exc
