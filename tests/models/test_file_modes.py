"""Files that hold what a model computed from personal data are readable by their owner only."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

from models.cache import ActivationCache
from models.files import open_private
from tests.models.test_cache import build_cache, synthetic_items


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_open_private_creates_and_tightens(tmp_path: Path) -> None:
    fresh = tmp_path / "fresh.bin"
    with open_private(fresh) as fh:
        fh.write(b"x")
    assert _mode(fresh) == 0o600 and fresh.read_bytes() == b"x"
    loose = tmp_path / "loose.bin"
    loose.write_bytes(b"old")
    loose.chmod(0o644)
    with open_private(loose) as fh:
        fh.write(b"new")
    assert _mode(loose) == 0o600 and loose.read_bytes() == b"new"


def test_cache_files_are_owner_only_after_build_and_remove(
    tmp_path: Path, small_config: Any, make_encoder: Any
) -> None:
    items = synthetic_items(6, seed=2)
    root = tmp_path / "c"
    cache = build_cache(root, make_encoder(small_config), items, small_config.max_length)
    files = [p for p in root.iterdir() if p.is_file()]
    assert files and all(_mode(p) == 0o600 for p in files), {p.name: oct(_mode(p)) for p in files}
    cache.remove({items[0][0]})
    reopened = ActivationCache(root)
    assert len(reopened) == len(items) - 1
    files = [p for p in root.iterdir() if p.is_file()]
    assert all(_mode(p) == 0o600 for p in files), {p.name: oct(_mode(p)) for p in files}
