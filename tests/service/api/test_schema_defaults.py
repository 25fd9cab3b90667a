"""The API schemas take their defaults and help text from the dataclasses that define them."""

import dataclasses
from typing import get_args

from models.approximate.names import FAMILY_NAMES
from models.approximate.thresholds import EvidenceThresholds
from models.config import FROM_DATASET, NOT_AN_OPTION_YET, TrainConfig
from service.api.schemas import ApproximateModelCreate, ModelCreate

# API field -> TrainConfig field (the API keeps its own names)
TRAIN_FIELDS = {
    "slices": "n_slices",
    "rank": "rank",
    "alpha": "alpha",
    "lr": "lr",
    "weight_decay": "weight_decay",
    "epochs": "epochs",
    "batch_size": "batch_size",
    "max_length": "max_length",
    "seed": "seed",
}


def test_model_create_defaults_and_help_are_train_configs() -> None:
    config = {f.name: f for f in dataclasses.fields(TrainConfig)}
    for api, name in TRAIN_FIELDS.items():
        field = ModelCreate.model_fields[api]
        assert field.default == config[name].default, api
        assert field.description == config[name].metadata["help"], api


def test_every_train_config_field_but_the_datasets_is_a_model_create_field() -> None:
    """A field added to ``TrainConfig`` fails here until the API takes it."""
    api = {TRAIN_FIELDS.get(name, name): field for name, field in ModelCreate.model_fields.items()}
    for f in dataclasses.fields(TrainConfig):
        if f.name in FROM_DATASET | NOT_AN_OPTION_YET:
            assert f.name not in api, f"{f.name} is set from the dataset, or not yet by the API"
            continue
        assert f.name in api, f"TrainConfig.{f.name} is not a field of ModelCreate"
        assert f.metadata["help"] in (api[f.name].description or ""), f.name
    assert api["backbone"].default is None, "null: the dataset kind's default backbone"


def test_approximate_thresholds_are_the_evidence_thresholds() -> None:
    for f in dataclasses.fields(EvidenceThresholds):
        field = ApproximateModelCreate.model_fields[f.name]
        assert field.default == f.default, f.name
        assert field.description == f.metadata["help"], f.name


def test_approximate_families_are_the_registered_names() -> None:
    annotation = ApproximateModelCreate.model_fields["family"].annotation
    assert get_args(annotation) == FAMILY_NAMES
