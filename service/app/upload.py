"""Importing an uploaded dataset without holding up the API.

A small upload is parsed and stored in the calling worker thread. A large one runs in a
child process: parsing and sealing it creates enough Python objects that the garbage
collector's pauses (which stop every thread of the process, measured at 200 ms for 20 MiB)
and long C calls would reach the event loop and every other request. The file goes to
``$UNLEARN_HOME/uploads`` (0600) only for the import and is removed afterwards, on error too.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import IO, TYPE_CHECKING

from service.access.principal import Principal
from service.settings import Settings
from service.views import DatasetSummary

if TYPE_CHECKING:
    from service.app.service import Service

IN_PROCESS_MAX_BYTES = 1024 * 1024


def import_upload(
    svc: Service, name: str, upload: IO[bytes], *, fmt: str, source: str
) -> DatasetSummary:
    """Import the open ``upload`` (any size within the caller's cap) as dataset ``name``."""
    from models.data import import_bytes

    upload.seek(0, os.SEEK_END)
    size = upload.tell()
    upload.seek(0)
    svc.check_upload(size)
    if size <= IN_PROCESS_MAX_BYTES:
        dataset = import_bytes(upload.read(), fmt=fmt, name=name, source=source)
        return svc.import_dataset(name, dataset)
    spool = svc.settings.home / "uploads"
    spool.mkdir(mode=0o700, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=spool, prefix="upload-") as tmp:  # created 0600
        shutil.copyfileobj(upload, tmp, 1024 * 1024)
        tmp.flush()
        spawn = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
            job = pool.submit(
                import_in_child, svc.settings, svc.principal, name, Path(tmp.name), fmt, source
            )
            return job.result()


def import_in_child(
    settings: Settings, principal: Principal, name: str, path: Path, fmt: str, source: str
) -> DatasetSummary:
    """The child process's side: parse the file in one streaming pass and store it."""
    from models.data.importer import parse_records
    from service.app.service import Service

    svc = Service.open(settings).acting_as(principal)
    try:
        with path.open("rb") as handle:
            dataset = parse_records(handle, fmt=fmt, source=source, name=name)
        return svc.import_dataset(name, dataset)
    finally:
        svc.db.dispose()
