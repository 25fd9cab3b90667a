"""The files a job writes hold lineage: whatever happens (published, lost, failed), a file
that no row uses afterwards is deleted, so no file of erased data outlives its job."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager

from sqlalchemy.orm import Session

from service.db.engine import Database


@contextmanager
def discarding_unused(
    db: Database,
    written: Callable[[], Collection[str]],
    in_use: Callable[[Session, list[str]], set[str]],
    delete: Callable[[str], None],
) -> Iterator[None]:
    """On leaving the block (normally or not), ``delete`` every sha256 of ``written()``
    that ``in_use`` (read after the block's own transactions committed) does not name."""
    try:
        yield
    finally:
        shas = sorted(written())
        if shas:
            with db.read() as s:
                used = in_use(s, shas)
            for sha in shas:
                if sha not in used:
                    delete(sha)
