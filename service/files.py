"""Writing small files safely: whole or not at all, and never two winners of a race.

Both functions create missing parent directories, then hand over to :mod:`models.files`, the
one atomic-write helper.
"""

from __future__ import annotations

from pathlib import Path

from models import files


def create_once(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Create ``path`` with ``data`` unless it exists (see :func:`models.files.create_once`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    files.create_once(path, data, mode=mode)


def replace_atomic(path: Path, data: bytes, *, mode: int) -> None:
    """Replace ``path`` so that readers see the old or the new file, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    files.write_atomic(path, data, mode=mode)
