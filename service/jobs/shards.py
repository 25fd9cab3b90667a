"""What a job reads of a shard (one consistent snapshot) and the shard's activation cache."""

from __future__ import annotations

import fcntl
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.adapters import AdaptedEncoder, build_encoder
from models.cache import ActivationCache
from models.config import TrainConfig
from models.data import model_input
from models.device import resolve_device
from models.progress import NULL_PROGRESS, Progress
from models.s3t import ShardData
from models.training import Example
from service.db.tables import ModelRow, PlacementRow, RecordRow
from service.erasure import vault
from service.settings import Settings


@dataclass(frozen=True)
class ShardSnapshot:
    """A shard's active records at routing version ``version``, and the erased ones' ids."""

    version: int
    data: ShardData
    inputs: dict[str, object]
    erased: frozenset[str]


def read_shard(s: Session, model_id: int, shard: int, n_slices: int) -> ShardSnapshot:
    """Call inside ``Database.snapshot()`` so the version and the records agree."""
    version = s.scalar(select(ModelRow.routing_version).where(ModelRow.id == model_id))
    assert version is not None
    rows = s.execute(
        select(
            PlacementRow.slice,
            PlacementRow.erased_version,
            RecordRow.record_id,
            RecordRow.label,
            RecordRow.payload,
        )
        .join(RecordRow, RecordRow.id == PlacementRow.record_pk)
        .where(PlacementRow.model_id == model_id, PlacementRow.shard == shard)
    ).all()
    slices: list[list[Example]] = [[] for _ in range(n_slices)]
    erased: set[str] = set()
    live: list[tuple[str, dict[str, object]]] = []
    for slice_, erased_version, rid, label, payload in rows:
        if erased_version is not None or payload is None:
            erased.add(rid)
            continue
        slices[slice_].append(Example(rid, label))
        live.append((rid, payload))
    opened = vault.open_payloads(s, [p for _, p in live])
    inputs: dict[str, object] = {
        rid: model_input(p) for (rid, _), p in zip(live, opened, strict=True)
    }
    data = ShardData(shard, tuple(tuple(sorted(s, key=lambda e: e.record_id)) for s in slices))
    return ShardSnapshot(version, data, inputs, frozenset(erased))


def erased_ids(s: Session, model_id: int, shard: int | None = None) -> dict[int, set[str]]:
    """Shard -> ids of the model's records erased so far (of one shard when given)."""
    query = (
        select(PlacementRow.shard, RecordRow.record_id)
        .join(RecordRow, RecordRow.id == PlacementRow.record_pk)
        .where(PlacementRow.model_id == model_id, PlacementRow.erased_version.is_not(None))
    )
    if shard is not None:
        query = query.where(PlacementRow.shard == shard)
    out: dict[int, set[str]] = {}
    for shard_, rid in s.execute(query):
        out.setdefault(shard_, set()).add(rid)
    return out


def make_encoder(config: TrainConfig) -> AdaptedEncoder:
    """The model's encoder on the worker's device (``UNLEARN_DEVICE``, default CUDA if any)."""
    return build_encoder(config).to(resolve_device())


def cache_dir(settings: Settings, model_id: int, shard: int) -> Path:
    return settings.caches_dir / f"model{model_id}" / f"shard{shard}"


@contextmanager
def cache_lock(root: Path) -> Iterator[None]:
    """Exclusive lock of one shard's cache (jobs of one shard may run side by side)."""
    root.parent.mkdir(parents=True, exist_ok=True)
    with (root.parent / f"{root.name}.lock").open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def purge_cache(root: Path, record_ids: Iterable[str]) -> int:
    """Zero and drop the rows of ``record_ids`` from the cache at ``root`` (if there is one);
    returns how many records' rows went."""
    ids = set(record_ids)
    if not ids:
        return 0
    with cache_lock(root):
        if not (root / "index.json").exists():
            return 0
        return ActivationCache(root).remove(ids)


def shard_cache(
    root: Path,
    encoder: AdaptedEncoder,
    snap: ShardSnapshot,
    *,
    max_length: int,
    progress: Progress = NULL_PROGRESS,
) -> ActivationCache:
    """The shard's cache without any erased row: reused (erased rows dropped) when it holds
    every active record, rebuilt otherwise. All files are mapped before the lock is let go,
    so a later removal by another job cannot pull them away."""
    with cache_lock(root):
        cache: ActivationCache | None = None
        if (root / "index.json").exists():
            cache = ActivationCache(root)
            cache.remove(snap.erased)
            if any(rid not in cache for rid in snap.inputs):
                cache = None
        if cache is None:
            shutil.rmtree(root, ignore_errors=True)
            cache = ActivationCache.build(
                root,
                encoder,
                list(snap.inputs.items()),
                max_length=max_length,
                progress=progress,
                description=f"caching shard {snap.data.shard}",
            )
        cache.open_all()
        return cache
