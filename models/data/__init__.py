"""The data layer: records, datasets, built-in corpora and the CSV/JSONL importer.

Stdlib and numpy only; nothing here imports torch, SQLAlchemy or the rest of the
project (but the stdlib-only root of the error tree, ``models.errors``), and heavy or
optional packages (mlxtend) load only inside the loader using them.
"""

from models.data.errors import DataError
from models.data.importer import import_bytes, import_file, parse_records
from models.data.mnist import load_mnist_5k
from models.data.records import Dataset, Record, model_input, record_digest, records_digest
from models.data.registry import DATASETS, load_dataset
from models.data.rotten_tomatoes import load_rotten_tomatoes

__all__ = [
    "DATASETS",
    "DataError",
    "Dataset",
    "Record",
    "import_bytes",
    "import_file",
    "load_dataset",
    "load_mnist_5k",
    "load_rotten_tomatoes",
    "model_input",
    "parse_records",
    "record_digest",
    "records_digest",
]
