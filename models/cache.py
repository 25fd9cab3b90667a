"""On-disk activation cache: the plain backbone's hidden states entering each layer group.

In top-down S3T training everything below the group being trained is the frozen backbone, the
same for every sequence and step of a shard. We compute those states once per record (one
example at a time, without padding, so a row never depends on which other records were present)
and store them as raw float32 memory maps, one file per group boundary.

The cache is derived personal data: :meth:`ActivationCache.remove` rewrites the files without
the erased records' rows and deletes the old files.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from models.errors import ModelsError
from models.files import open_private, write_atomic
from models.progress import NULL_PROGRESS, Progress

if TYPE_CHECKING:  # torch loads when a cache is built or read, not to look one up
    import torch

    from models.adapters import AdaptedEncoder

INDEX = "index.json"


@dataclass(frozen=True)
class CacheEntry:
    offset: int
    length: int


class CacheError(ModelsError):
    """An activation cache is missing, or lacks a record asked of it."""


class ActivationCache:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._load()

    def _load(self) -> None:
        try:
            meta = json.loads((self.root / INDEX).read_text())
        except FileNotFoundError:
            raise CacheError(f"no activation cache at {self.root}") from None
        self.generation: int = meta["generation"]
        self.hidden_size: int = meta["hidden_size"]
        self.groups: tuple[int, ...] = tuple(meta["groups"])
        self.boundaries: dict[int, int] = {int(k): v for k, v in meta["boundaries"].items()}
        self.backbone_sha256: str = meta["backbone_sha256"]
        self.max_length: int = meta["max_length"]
        self.entries: dict[str, CacheEntry] = {
            rid: CacheEntry(off, n) for rid, off, n in meta["records"]
        }
        self.total_tokens: int = meta["total_tokens"]
        self._maps: dict[int, np.ndarray] = {}

    # -- building -----------------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        root: Path,
        encoder: AdaptedEncoder,
        items: Iterable[tuple[str, object]],
        *,
        max_length: int,
        progress: Progress = NULL_PROGRESS,
        description: str = "caching activations",
    ) -> ActivationCache:
        """Cache ``(record_id, input)`` items, the input being what the backbone reads (a text
        or a feature vector); any order, stored by record id."""
        import torch

        ordered = sorted(items, key=lambda item: item[0])
        ids = [rid for rid, _ in ordered]
        if len(set(ids)) != len(ids):
            raise CacheError("duplicate record ids given to the activation cache")
        root.mkdir(parents=True, exist_ok=True)
        layout = encoder.layout
        groups = tuple(range(layout.n_groups, 0, -1))  # bottom-most boundary first
        backbone = encoder.backbone
        encoder.set_active_groups(0)
        gen = 1
        files = {g: open_private(root / _data_name(g, gen)) for g in groups}
        records: list[tuple[str, int, int]] = []
        offset = 0
        try:
            with (
                progress.task(description, len(ordered), unit="records") as advance,
                torch.no_grad(),
            ):
                for rid, item in ordered:
                    inputs = backbone.prepare([item], max_length)
                    hidden = backbone.embed(inputs)
                    layer = 0
                    for g in groups:
                        stop = layout.boundary(g)
                        hidden = backbone.run_layers(hidden, None, layer, stop)
                        layer = stop
                        row = hidden[0].to(torch.float32).contiguous().cpu().numpy()
                        files[g].write(row.tobytes())
                    n = int(inputs.attention_mask.shape[1])  # positions the layers see
                    records.append((rid, offset, n))
                    offset += n
                    advance(1)
        finally:
            for fh in files.values():
                fh.close()
        meta = {
            "generation": gen,
            "hidden_size": backbone.hidden_size,
            "groups": list(groups),
            "boundaries": {str(g): layout.boundary(g) for g in groups},
            "backbone_sha256": backbone.weights_sha256,
            "max_length": max_length,
            "total_tokens": offset,
            "records": records,
        }
        write_atomic(root / INDEX, json.dumps(meta).encode(), mode=0o600)
        return cls(root)

    # -- reading ------------------------------------------------------------------------------
    def __contains__(self, record_id: object) -> bool:
        return record_id in self.entries

    def __len__(self) -> int:
        return len(self.entries)

    def _map(self, group: int) -> np.ndarray:
        if group not in self._maps:
            path = self.root / _data_name(group, self.generation)
            if self.total_tokens == 0:
                self._maps[group] = np.zeros((0, self.hidden_size), dtype=np.float32)
            else:
                self._maps[group] = np.memmap(
                    path, dtype=np.float32, mode="r", shape=(self.total_tokens, self.hidden_size)
                )
        return self._maps[group]

    def open_all(self) -> None:
        """Map every group's file now: the mappings outlive a later ``remove`` by another
        process (which deletes the files this generation maps)."""
        for g in self.groups:
            self._map(g)

    def length(self, record_id: str) -> int:
        try:
            return self.entries[record_id].length
        except KeyError:
            raise CacheError(f"record {record_id!r} is not in the activation cache") from None

    def rows(self, group: int, record_id: str) -> torch.Tensor:
        """Hidden states entering ``group`` for one record: [tokens, hidden]."""
        try:
            entry = self.entries[record_id]
        except KeyError:
            raise CacheError(f"record {record_id!r} is not in the activation cache") from None
        data = np.array(self._map(group)[entry.offset : entry.offset + entry.length])
        import torch

        return torch.from_numpy(data)

    def batch(self, group: int, record_ids: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Right-padded hidden states [batch, tokens, hidden] and the 0/1 mask [batch, tokens]."""
        rows = [self.rows(group, rid) for rid in record_ids]
        return pad_rows(rows)

    # -- erasure ------------------------------------------------------------------------------
    def remove(self, record_ids: Iterable[str]) -> int:
        """Drop the rows of ``record_ids`` (unknown ids are ignored); returns how many went.

        First overwrites the dropped rows with zeros in place (a job that still maps the old
        files keeps their blocks allocated after the unlink: without this, the rows would stay
        on disk until it ends), then writes a new generation of every file without them,
        switches the index to it atomically and deletes the old files. The erased rows are gone
        from disk once this returns. Only computations that read the dropped rows see the
        zeros, and those are cut anyway (they trained on an erased record).
        """
        drop = {rid for rid in record_ids if rid in self.entries}
        if not drop:
            return 0
        self._zero(drop)
        keep = sorted(
            ((rid, e) for rid, e in self.entries.items() if rid not in drop),
            key=lambda item: item[1].offset,
        )
        new_gen = self.generation + 1
        records: list[tuple[str, int, int]] = []
        for g in self.groups:
            src = self._map(g)
            with open_private(self.root / _data_name(g, new_gen)) as out:
                for _, e in keep:
                    out.write(np.ascontiguousarray(src[e.offset : e.offset + e.length]).tobytes())
                out.flush()
                os.fsync(out.fileno())
        offset = 0
        for rid, e in keep:
            records.append((rid, offset, e.length))
            offset += e.length
        meta = json.loads((self.root / INDEX).read_text())
        meta.update(generation=new_gen, total_tokens=offset, records=records)
        old_gen = self.generation
        self._maps.clear()
        write_atomic(self.root / INDEX, json.dumps(meta).encode(), mode=0o600)
        for g in self.groups:
            (self.root / _data_name(g, old_gen)).unlink(missing_ok=True)
        self._load()
        return len(drop)

    def _zero(self, record_ids: set[str]) -> None:
        if self.total_tokens == 0:
            return
        width = self.hidden_size * np.dtype(np.float32).itemsize
        spans = sorted((self.entries[rid].offset, self.entries[rid].length) for rid in record_ids)
        for g in self.groups:
            with (self.root / _data_name(g, self.generation)).open("r+b") as fh:
                for offset, length in spans:
                    fh.seek(offset * width)
                    fh.write(bytes(length * width))
                fh.flush()
                os.fsync(fh.fileno())


class CacheSet:
    """Several caches (e.g. one per shard) read as one row source."""

    def __init__(self, caches: Sequence[ActivationCache]) -> None:
        self.caches = list(caches)

    def _owner(self, record_id: str) -> ActivationCache:
        for cache in self.caches:
            if record_id in cache:
                return cache
        raise CacheError(f"record {record_id!r} is in none of the activation caches")

    def length(self, record_id: str) -> int:
        return self._owner(record_id).length(record_id)

    def batch(self, group: int, record_ids: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        return pad_rows([self._owner(rid).rows(group, rid) for rid in record_ids])


def pad_rows(rows: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack variable-length [tokens, hidden] rows, right-padded with zeros, plus their mask."""
    if not rows:
        raise CacheError("empty batch")
    import torch

    width = max(r.shape[0] for r in rows)
    hidden = torch.zeros(len(rows), width, rows[0].shape[1], dtype=rows[0].dtype)
    mask = torch.zeros(len(rows), width, dtype=torch.long)
    for i, r in enumerate(rows):
        hidden[i, : r.shape[0]] = r
        mask[i, : r.shape[0]] = 1
    return hidden, mask


def _data_name(group: int, generation: int) -> str:
    return f"group{group}.gen{generation}.f32"
