"""The model families the service can train and unlearn approximately, by name: what data
each reads, how records become :class:`Examples`, and how its weights are saved.

A family's hyperparameters are its dataclass fields; the service passes the ones a model was
registered with (``family_params``) and refuses unknown ones.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from models.approximate.base import Examples, Family, Task, UnlearningError
from models.approximate.lm import TinyGPT2Family
from models.approximate.names import FAMILY_NAMES, FamilyName
from models.approximate.text import LoraTextFamily
from models.approximate.vision import CNNFamily

IMAGE_SIDE = 28


@dataclass(frozen=True)
class FamilyKind:
    name: FamilyName
    task: Task
    data_kind: str  # the dataset kind it reads: "features" or "text"
    make: Callable[..., Family]
    labelled: bool  # classifiers take the dataset's labels; the language model ignores them


FAMILIES: dict[str, FamilyKind] = {
    kind.name: kind
    for kind in (
        FamilyKind("cnn-mnist", "classifier", "features", CNNFamily, True),
        FamilyKind("minilm-lora-all", "classifier", "text", LoraTextFamily, True),
        FamilyKind("gpt2-tiny", "lm", "text", TinyGPT2Family, False),
    )
}
if tuple(FAMILIES) != FAMILY_NAMES:  # the names the CLI and the API offer, without torch
    raise ImportError(f"families {tuple(FAMILIES)} differ from names.FAMILY_NAMES {FAMILY_NAMES}")
# What a family's constructor takes that is not a hyperparameter.
_FIXED = {"name", "task", "n_classes"}


def family_kind(name: str) -> FamilyKind:
    try:
        return FAMILIES[name]
    except KeyError:
        raise UnlearningError(
            f"unknown model family {name!r}; known: {', '.join(sorted(FAMILIES))}"
        ) from None


def make_family(name: str, params: Mapping[str, Any], n_classes: int) -> Family:
    """The family with ``params`` applied; unknown or ill-typed parameters are refused."""
    kind = family_kind(name)
    family_class = kind.make
    if not dataclasses.is_dataclass(family_class):
        raise TypeError(f"family {name} is not a dataclass: its fields are its parameters")
    fields = {f.name: f for f in dataclasses.fields(family_class) if not f.name.startswith("_")}
    allowed = sorted(set(fields) - _FIXED)
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise UnlearningError(f"{name} has no parameter(s) {unknown}; it takes {allowed}")
    for key, value in params.items():
        like = type(fields[key].default).__name__
        if not _same_type(fields[key].default, value) or value < 0:
            raise UnlearningError(f"{name} parameter {key} must be a non-negative {like}")
    extra = {"n_classes": n_classes} if kind.labelled else {}
    return kind.make(**params, **extra)


def _same_type(default: object, value: object) -> bool:
    if isinstance(default, bool) or isinstance(value, bool):
        return False  # no family has a switch; a bool is never a size or a rate
    if isinstance(default, float):
        return isinstance(value, int | float)
    return isinstance(default, int) and isinstance(value, int)


def dataset_problem(name: str, data_kind: str, n_labels: int, n_features: int | None) -> str | None:
    """Why family ``name`` cannot read such a dataset, or ``None`` when it can."""
    kind = family_kind(name)
    if kind.data_kind != data_kind:
        return f"{name} reads {kind.data_kind} datasets, not {data_kind}"
    if name == "cnn-mnist" and n_features != IMAGE_SIDE * IMAGE_SIDE:
        return f"cnn-mnist reads 28x28 images: {IMAGE_SIDE * IMAGE_SIDE} features, not {n_features}"
    if kind.labelled and n_labels < 2:
        return f"{name} is a classifier and needs at least 2 labels"
    return None


def to_examples(family: Family, inputs: Sequence[Any], labels: Sequence[int]) -> Examples:
    """Records' inputs (feature lists in [0, 1] or texts) and labels as the family's examples."""
    if isinstance(family, CNNFamily):
        x = torch.tensor([list(v) for v in inputs], dtype=torch.float32)
        return Examples(x.reshape(-1, 1, IMAGE_SIDE, IMAGE_SIDE), torch.tensor(list(labels)))
    if isinstance(family, LoraTextFamily):
        return family.encode_texts([str(t) for t in inputs], list(labels))
    if isinstance(family, TinyGPT2Family):
        return family.encode_texts([str(t) for t in inputs])
    raise UnlearningError(f"no record encoding for family {family.name}")


def weights(model: nn.Module) -> dict[str, Tensor]:
    """The trained weights (a frozen pretrained backbone is rebuilt, not saved)."""
    return {
        n: p.detach().contiguous().clone() for n, p in model.named_parameters() if p.requires_grad
    }


def load_weights(model: nn.Module, tensors: Mapping[str, Tensor]) -> nn.Module:
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    if set(tensors) != trainable:
        missing, extra = sorted(trainable - set(tensors)), sorted(set(tensors) - trainable)
        raise UnlearningError(
            f"weights do not fit the model: missing {missing[:3]}, unexpected {extra[:3]}"
        )
    model.load_state_dict(dict(tensors), strict=False)
    return model.eval()
