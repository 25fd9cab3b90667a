"""Datasets by name: the built-in corpora, or a path to a CSV/JSONL file to import."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from models.data.errors import DataError
from models.data.importer import SUFFIXES, import_file
from models.data.mnist import load_mnist_5k
from models.data.records import Dataset
from models.data.rotten_tomatoes import load_rotten_tomatoes

_LOADERS: dict[str, Callable[[], Dataset]] = {
    "rotten-tomatoes": load_rotten_tomatoes,
    "mnist-5k": load_mnist_5k,
}
DATASETS: tuple[str, ...] = tuple(_LOADERS)


def load_dataset(name: str) -> Dataset:
    """Load a built-in dataset by name, or import ``name`` as a .csv/.jsonl/.ndjson path."""
    loader = _LOADERS.get(name)
    if loader is not None:
        return loader()
    path = Path(name)
    if path.suffix.lower() in SUFFIXES:
        if not path.is_file():
            raise DataError("no such file", source=name)
        return import_file(path)
    files = "/".join(SUFFIXES)
    raise DataError(
        f"unknown dataset {name!r}; known datasets: {', '.join(DATASETS)} "
        f"(or a path to a {files} file)"
    )
