"""``/v1/datasets``: import a dataset, read its summary."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, Response, UploadFile, status
from pydantic.json_schema import SkipJsonSchema
from starlette.concurrency import run_in_threadpool

from service.access.scopes import Scope
from service.api.auth import Scoped
from service.api.contract import BODY, problems
from service.app.upload import import_upload
from service.core import Service
from service.lineage.errors import Unprocessable
from service.views import DatasetSummary

router = APIRouter()


@router.post(
    "/datasets",
    status_code=status.HTTP_201_CREATED,
    response_model=DatasetSummary,
    responses=problems(
        *BODY,
        409,
        s409="a dataset of that name exists",
        s422="the form does not validate, a row is invalid (``line`` and ``column`` say "
        "where), or the file is over UNLEARN_MAX_UPLOAD_BYTES",
    ),
)
async def create_dataset(
    svc: Annotated[Service, Scoped(Scope.DATASETS_WRITE)],
    response: Response,
    name: Annotated[str, Form(min_length=1, max_length=200, pattern=r"^[\w.-]+$")],
    file: Annotated[UploadFile, File(description="CSV or JSON Lines")],
    format: Annotated[
        Literal["csv", "jsonl"] | SkipJsonSchema[None],
        Form(description="else told by the file's name"),
    ] = None,
) -> DatasetSummary:
    """Import a dataset: every row valid, or nothing stored (the error names the line).

    The multipart parser has already spooled the file to disk; the import runs in a worker
    thread, and a large one in a child process (``service.app.upload``), so an upload never
    holds up the event loop: ``/livez`` and every other request keep answering."""
    fmt = format or _format_from_name(file.filename)
    summary = await run_in_threadpool(
        import_upload, svc, name, file.file, fmt=fmt, source=file.filename or "upload"
    )
    response.headers["Location"] = f"/v1/datasets/{name}"
    return summary


def _format_from_name(filename: str | None) -> str:
    suffix = (filename or "").rsplit(".", 1)[-1].lower()
    if suffix in ("csv",):
        return "csv"
    if suffix in ("jsonl", "ndjson"):
        return "jsonl"
    raise Unprocessable("cannot tell the format from the file name: send format=csv|jsonl")


@router.get("/datasets/{name}", response_model=DatasetSummary, responses=problems(404, 422))
def read_dataset(svc: Annotated[Service, Scoped(Scope.DATASETS_READ)], name: str) -> DatasetSummary:
    return svc.dataset(name)
