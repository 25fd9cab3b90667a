"""Writing small files safely: whole or not at all, and never two winners of a race."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def _private_tmp(path: Path, data: bytes, mode: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    return tmp


def create_once(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Create ``path`` with ``data`` unless it exists: written whole under a private name,
    then linked into place, so a process racing us either wins the link or reads the
    winner's complete file."""
    tmp = _private_tmp(path, data, mode)
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()


def replace_atomic(path: Path, data: bytes, *, mode: int) -> None:
    """Replace ``path`` so that readers see the old or the new file, never a part."""
    os.replace(_private_tmp(path, data, mode), path)
