"""Writing files whole or not at all: the one atomic-write helper of the project.

A reader of ``path`` sees no file, the old file or the new one, never a part: the bytes go to a
private sibling (same directory, so the final rename or link stays on one file system), are
flushed and fsynced, and only then moved into place. A failed write leaves ``path`` as it was
and removes the sibling. The directory must exist. ``mode`` is filtered by the umask, as with
:func:`open`.

Stdlib only, so :mod:`service` uses it too without importing torch.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import BinaryIO


def write_atomic(path: Path, data: bytes, *, mode: int = 0o666) -> None:
    """Replace ``path`` with ``data``: readers see the old or the new file, never a part."""
    tmp = _write_private(path, data, mode)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def open_private(path: Path) -> BinaryIO:
    """``path`` opened for writing (created or truncated), readable by its owner only: the
    activation caches hold what a backbone computed from personal data."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an existing file keeps its mode on O_CREAT: tighten it
    return os.fdopen(fd, "wb")


def create_once(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Create ``path`` with ``data`` unless it exists: written whole under a private name,
    then linked into place, so a process racing us either wins the link or reads the
    winner's complete file."""
    tmp = _write_private(path, data, mode)
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()


def _write_private(path: Path, data: bytes, mode: int) -> Path:
    """A new sibling of ``path`` under a name no other writer uses, holding ``data`` on disk."""
    tmp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp
