"""CLI options take their defaults and help text from the dataclasses that define them."""

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any, get_type_hints

import pytest
from typer.testing import CliRunner

from models.approximate.thresholds import EvidenceThresholds
from models.config import FROM_DATASET, NOT_AN_OPTION_YET, TrainConfig
from service.cli import approximate, experiment, models
from service.cli.main import app

SLICES = {"slices": "n_slices"}  # the option's name where it is not the field's
OWN = {"backbone"}  # picked by the dataset's kind unless given (its help says so)
TRAIN_COMMANDS = {"train": models.train, "experiment train": experiment.train}


def _options(command: Callable[..., Any]) -> dict[str, tuple[Any, Any]]:
    """Parameter -> (default, help) of a typer command."""
    hints = get_type_hints(command, include_extras=True)
    found = {}
    for name, param in inspect.signature(command).parameters.items():
        info = next(m for m in hints[name].__metadata__ if hasattr(m, "help"))
        found[name] = (param.default, info.help)
    return found


def _flag(field: str) -> str:
    option = {v: k for k, v in SLICES.items()}.get(field, field)
    return "--" + option.replace("_", "-")


@pytest.mark.parametrize("command", TRAIN_COMMANDS.values(), ids=TRAIN_COMMANDS)
def test_train_options_are_train_configs(command: Callable[..., Any]) -> None:
    options = _options(command)
    config = {f.name: f for f in dataclasses.fields(TrainConfig)}
    shared = {o: SLICES.get(o, o) for o in options if SLICES.get(o, o) in set(config) - OWN}
    assert {"slices", "rank", "epochs", "max_length", "seed"} <= set(shared)
    for option, name in shared.items():
        assert options[option] == (config[name].default, config[name].metadata["help"]), option


@pytest.mark.parametrize("command", TRAIN_COMMANDS.values(), ids=TRAIN_COMMANDS)
def test_every_train_config_field_but_the_datasets_is_an_option(
    command: Callable[..., Any],
) -> None:
    """A field added to ``TrainConfig`` fails here until both train commands take it."""
    options = {SLICES.get(o, o): value for o, value in _options(command).items()}
    for f in dataclasses.fields(TrainConfig):
        if f.name in FROM_DATASET | NOT_AN_OPTION_YET:
            assert f.name not in options, f"{f.name} is set from the dataset, or not yet here"
            continue
        assert f.name in options, f"TrainConfig.{f.name} is not an option"
        assert f.metadata["help"] in options[f.name][1], f.name


@pytest.mark.parametrize("words", TRAIN_COMMANDS, ids=TRAIN_COMMANDS)
def test_train_help_lists_every_train_config_field(words: str) -> None:
    result = CliRunner().invoke(app, [*words.split(), "--help"], env={"COLUMNS": "240"})
    assert result.exit_code == 0, result.output
    for f in dataclasses.fields(TrainConfig):
        if f.name not in FROM_DATASET | NOT_AN_OPTION_YET:
            assert _flag(f.name) in result.output, f.name
            assert f.metadata["help"] in result.output, f.name


def test_threshold_options_are_the_evidence_thresholds() -> None:
    options = _options(approximate.train_approximate)
    for f in dataclasses.fields(EvidenceThresholds):
        if f.name in options:  # evidence_retain is an API field only
            assert options[f.name] == (f.default, f.metadata["help"]), f.name
