"""The names of the approximate model families and the default unlearning method per task.

Torch-free, so the CLI options and the API schemas can offer them without loading a model;
``models.approximate.families`` registers one family per name (and refuses to import when
they disagree).
"""

from __future__ import annotations

from typing import Literal, get_args

FamilyName = Literal["cnn-mnist", "minilm-lora-all", "gpt2-tiny"]
FAMILY_NAMES: tuple[FamilyName, ...] = get_args(FamilyName)
FAMILY_HELP = "model family: cnn-mnist reads 28x28 numeric images, the others text"

# The method a deletion runs when the model names none, by task (``base.Task``): the
# benchmarks' best (bench/approximate.py: l1-sparse closest to Retrain on random
# forgetting; NPO on the LM).
DEFAULT_METHOD: dict[str, str] = {"classifier": "l1-sparse", "lm": "NPO"}
METHOD_HELP = (
    f"unlearning method a deletion runs (default: {DEFAULT_METHOD['classifier']}; "
    f"{DEFAULT_METHOD['lm']} for the LM)"
)

# The methods that promise an exact result (retraining on the retain set), for the views that
# say so without importing torch; ``models.approximate.methods`` refuses to import when its
# registry disagrees.
EXACT_METHODS: frozenset[str] = frozenset({"Retrain"})
