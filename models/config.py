"""Training configuration: one frozen dataclass, hashed into every checkpoint's provenance."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines the bytes of a trained checkpoint (besides the data).

    Fields carry their help text in ``metadata["help"]``: :func:`help_of` reads it for the CLI
    options and the API schema, whose defaults are :data:`DEFAULT_TRAIN`'s.
    """

    backbone: str = dataclasses.field(
        default="all-minilm-l6-v2",
        metadata={"help": "a built-in backbone name, or a Hugging Face model folder (a path)"},
    )
    task: str = dataclasses.field(
        default="classify",
        metadata={
            "help": "classify (a head on the labels) or lm (causal language modelling of "
            "each record's completion, the model's own output layer frozen)"
        },
    )
    n_slices: int = dataclasses.field(
        default=4, metadata={"help": "slices per shard (L) = LoRA layer groups"}
    )
    rank: int = dataclasses.field(default=8, metadata={"help": "LoRA rank"})
    lora_targets: str = dataclasses.field(
        default="attention",
        metadata={
            "help": "which modules of an adapted layer get LoRA: attention (its query and "
            "value projections) or all-linear"
        },
    )
    alpha: float = dataclasses.field(default=16.0, metadata={"help": "LoRA alpha"})
    lr: float = dataclasses.field(default=2e-3, metadata={"help": "AdamW learning rate"})
    weight_decay: float = dataclasses.field(default=0.0, metadata={"help": "AdamW weight decay"})
    epochs: int = dataclasses.field(default=2, metadata={"help": "epochs per training step"})
    batch_size: int = dataclasses.field(default=32, metadata={"help": "examples per batch"})
    max_length: int = dataclasses.field(
        default=64, metadata={"help": "tokens per example (longer texts are truncated)"}
    )
    n_classes: int = dataclasses.field(default=2, metadata={"help": "number of labels"})
    seed: int = dataclasses.field(default=0, metadata={"help": "base seed of the model"})

    def __post_init__(self) -> None:
        checks = {
            "n_slices": self.n_slices >= 1,
            "rank": self.rank >= 1,
            "alpha": self.alpha > 0,
            "lr": self.lr > 0,
            "weight_decay": self.weight_decay >= 0,
            "epochs": self.epochs >= 1,
            "batch_size": self.batch_size >= 1,
            "max_length": self.max_length >= 2,
            "n_classes": self.n_classes >= 2,
            "lora_targets": self.lora_targets in ("attention", "all-linear"),
            "task": self.task in ("classify", "lm"),
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"invalid TrainConfig field(s): {', '.join(bad)}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown TrainConfig field(s): {', '.join(sorted(unknown))}")
        return cls(**data)

    def config_hash(self) -> str:
        """sha256 of the canonical JSON of all fields, the backbone as its identity (a model
        folder by its content, ``models.folders``), leaving out the fields added later while
        they hold their default (so a model trained before keeps its hash)."""
        from models.folders import backbone_identity

        data = self.to_dict()
        data["backbone"] = backbone_identity(self.backbone)
        for name, default in HASHED_UNLESS_DEFAULT.items():
            if data[name] == default:
                del data[name]
        return canonical_sha256(data)


HASHED_UNLESS_DEFAULT = {"lora_targets": "attention", "task": "classify"}
DEFAULT_TRAIN = TrainConfig()  # every field's default, typed (``DEFAULT_TRAIN.rank`` is an int)
# Fields a model takes from its dataset (one class per label), never from an option; every
# other field is an option of `unlearn train`, `unlearn experiment train` and the API.
FROM_DATASET = frozenset({"n_classes"})
# Fields no command or route sets yet: the causal LM task is trained from models/ (issue 16).
NOT_AN_OPTION_YET = frozenset({"task"})


def help_of(config: type[Any], name: str) -> str:
    """The ``metadata["help"]`` of field ``name`` of the dataclass ``config``."""
    for f in dataclasses.fields(config):
        if f.name == name:
            return str(f.metadata["help"])
    raise KeyError(f"{config.__name__} has no field {name!r}")


def canonical_json(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_sha256(data: Any) -> str:
    return hashlib.sha256(canonical_json(data).encode("utf-8")).hexdigest()
