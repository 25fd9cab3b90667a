from __future__ import annotations

import copy
import random
from collections.abc import Callable
from pathlib import Path

import pytest

from models.adapters import AdaptedEncoder
from models.backbone import Backbone
from models.backbones import load_backbone
from models.cache import ActivationCache
from models.config import TrainConfig
from models.determinism import configure_determinism
from models.s3t import ShardData
from models.training import Example

POSITIVE = ["great", "moving", "funny", "brilliant", "warm", "sharp"]
NEGATIVE = ["dull", "clumsy", "tedious", "bland", "messy", "flat"]
NOUNS = ["film", "script", "cast", "story", "ending", "score"]


def synthetic_items(n: int, seed: int = 0) -> list[tuple[str, str, int]]:
    """(record_id, text, label) with a learnable sentiment signal and varied lengths."""
    rng = random.Random(seed)
    items = []
    for i in range(n):
        label = i % 2
        word = rng.choice(POSITIVE if label else NEGATIVE)
        filler = " ".join(rng.choice(NOUNS) for _ in range(rng.randint(0, 6)))
        items.append(
            (f"rec-{i:04d}", f"the {rng.choice(NOUNS)} was {word} {filler}".strip(), label)
        )
    return items


@pytest.fixture(scope="session", autouse=True)
def _determinism() -> None:
    configure_determinism()


@pytest.fixture(scope="session")
def plain_backbone() -> Backbone:
    return load_backbone("all-minilm-l6-v2")


@pytest.fixture
def small_config() -> TrainConfig:
    return TrainConfig(n_slices=3, rank=4, alpha=8.0, epochs=1, batch_size=8, max_length=24)


@pytest.fixture
def make_encoder(plain_backbone: Backbone) -> Callable[[TrainConfig], AdaptedEncoder]:
    def make(config: TrainConfig) -> AdaptedEncoder:
        backbone = copy.deepcopy(plain_backbone)
        return AdaptedEncoder(
            backbone, n_groups=config.n_slices, rank=config.rank, alpha=config.alpha
        )

    return make


def shard_from_items(items: list[tuple[str, str, int]], n_slices: int, shard: int = 0) -> ShardData:
    slices = tuple(
        tuple(sorted((Example(rid, y) for rid, _, y in items[s::n_slices]), key=_by_id))
        for s in range(n_slices)
    )
    return ShardData(shard, slices)


def build_cache(
    root: Path, encoder: AdaptedEncoder, items: list[tuple[str, str, int]], max_length: int
) -> ActivationCache:
    return ActivationCache.build(
        root, encoder, [(rid, t) for rid, t, _ in items], max_length=max_length
    )


def _by_id(e: Example) -> str:
    return e.record_id
