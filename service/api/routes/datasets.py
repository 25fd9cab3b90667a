"""``/v1/datasets``: import a dataset, read its summary."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Response, UploadFile, status

from service.access.scopes import Scope
from service.api.auth import Scoped
from service.core import Service
from service.lineage.errors import Unprocessable
from service.views import DatasetSummary

router = APIRouter()


@router.post("/datasets", status_code=status.HTTP_201_CREATED, response_model=DatasetSummary)
async def create_dataset(
    svc: Annotated[Service, Scoped(Scope.DATASETS_WRITE)],
    response: Response,
    name: Annotated[str, Form(min_length=1, max_length=200, pattern=r"^[\w.-]+$")],
    file: Annotated[UploadFile, File(description="CSV or JSON Lines")],
    format: Annotated[str | None, Form(pattern="^(csv|jsonl)$")] = None,
) -> DatasetSummary:
    """Import a dataset: every row valid, or nothing stored (the error names the line)."""
    from models.data import import_bytes

    fmt = format or _format_from_name(file.filename)
    data = await file.read()
    svc.check_upload(len(data))
    dataset = import_bytes(data, fmt=fmt, name=name, source=file.filename or "upload")
    summary = svc.import_dataset(name, dataset)
    response.headers["Location"] = f"/v1/datasets/{name}"
    return summary


def _format_from_name(filename: str | None) -> str:
    suffix = (filename or "").rsplit(".", 1)[-1].lower()
    if suffix in ("csv",):
        return "csv"
    if suffix in ("jsonl", "ndjson"):
        return "jsonl"
    raise Unprocessable("cannot tell the format from the file name: send format=csv|jsonl")


@router.get("/datasets/{name}", response_model=DatasetSummary)
def read_dataset(svc: Annotated[Service, Scoped(Scope.DATASETS_READ)], name: str) -> DatasetSummary:
    return svc.dataset(name)
