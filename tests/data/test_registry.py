"""Dataset names, file paths, and the layer's import boundary."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.data import DATASETS, DataError, load_dataset
from tests.data.conftest import ModulesAfter


def test_known_names() -> None:
    assert DATASETS == ("rotten-tomatoes", "mnist-5k")
    assert len(load_dataset("rotten-tomatoes")) == 12_808


def test_unknown_name_lists_known_ones() -> None:
    with pytest.raises(DataError) as info:
        load_dataset("imdb")
    assert "rotten-tomatoes" in str(info.value)
    assert "mnist-5k" in str(info.value)


def test_paths_are_imported(tmp_path: Path) -> None:
    path = tmp_path / "mine.jsonl"
    path.write_text('{"record_id": "a", "text": "hi", "label": "x"}\n', encoding="utf-8")
    data = load_dataset(str(path))
    assert (data.name, data.record_ids(), data.label_names) == ("mine", ["a"], ("x",))
    with pytest.raises(DataError, match="no such file"):
        load_dataset(str(tmp_path / "absent.csv"))


def test_import_boundary(modules_after: ModulesAfter) -> None:
    modules = modules_after("import models.data")
    for forbidden in ("torch", "sqlalchemy", "mlxtend", "scattertext", "service", "workers"):
        assert forbidden not in modules, forbidden
