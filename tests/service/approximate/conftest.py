from __future__ import annotations

import random

import pytest

from models.data import Dataset, Record
from service.core import Service
from tests.service.api.conftest import client  # noqa: F401  (the API client fixture)

SIDE = 28


def image_dataset(n: int, seed: int, name: str, n_subjects: int = 0) -> Dataset:
    """Ten classes of 28x28 "images": a fixed random prototype per class plus noise, values
    in [0, 1]; the first ``3 * n_subjects`` records belong to ``subject-0..`` (three each)."""
    protos = random.Random(1234)
    prototypes = [[protos.random() for _ in range(SIDE * SIDE)] for _ in range(10)]
    rng = random.Random(seed)
    records = []
    for i in range(n):
        label = i % 10
        pixels = tuple(min(1.0, max(0.0, p + rng.gauss(0, 0.35))) for p in prototypes[label])
        subject = f"subject-{i // 3}" if i < 3 * n_subjects else None
        records.append(Record(f"{name}-{i:04d}", subject, label, features=pixels))
    return Dataset(name=name, records=tuple(records), label_names=tuple(str(d) for d in range(10)))


@pytest.fixture
def images(service: Service) -> Service:
    """The service with ``digits`` (200 records, subjects 0-3) and ``digits-held-out`` (60)."""
    service.import_dataset("digits", image_dataset(200, 0, "digits", n_subjects=4))
    service.import_dataset("digits-held-out", image_dataset(60, 1, "held"))
    return service


CNN = {"width": 4, "epochs": 8, "batch_size": 16, "lr": 0.003}
