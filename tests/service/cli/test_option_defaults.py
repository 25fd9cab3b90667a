"""CLI options take their defaults and help text from the dataclasses that define them."""

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any, get_type_hints

import pytest

from models.approximate.thresholds import EvidenceThresholds
from models.config import TrainConfig
from service.cli import approximate, experiment, models

SLICES = {"slices": "n_slices"}  # the option's name where it is not the field's
OWN = {"backbone"}  # `experiment train --backbone auto` picks one by the dataset's kind


def _options(command: Callable[..., Any]) -> dict[str, tuple[Any, Any]]:
    """Parameter -> (default, help) of a typer command."""
    hints = get_type_hints(command, include_extras=True)
    found = {}
    for name, param in inspect.signature(command).parameters.items():
        info = next(m for m in hints[name].__metadata__ if hasattr(m, "help"))
        found[name] = (param.default, info.help)
    return found


@pytest.mark.parametrize("command", [models.train, experiment.train])
def test_train_options_are_train_configs(command: Callable[..., Any]) -> None:
    options = _options(command)
    config = {f.name: f for f in dataclasses.fields(TrainConfig)}
    shared = {o: SLICES.get(o, o) for o in options if SLICES.get(o, o) in set(config) - OWN}
    assert {"slices", "rank", "epochs", "max_length", "seed"} <= set(shared)
    for option, name in shared.items():
        assert options[option] == (config[name].default, config[name].metadata["help"]), option


def test_threshold_options_are_the_evidence_thresholds() -> None:
    options = _options(approximate.train_approximate)
    for f in dataclasses.fields(EvidenceThresholds):
        if f.name in options:  # evidence_retain is an API field only
            assert options[f.name] == (f.default, f.metadata["help"]), f.name
