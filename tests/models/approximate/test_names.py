"""The torch-free names and thresholds agree with the registries that use them."""

import subprocess
import sys

from models.approximate.families import FAMILIES
from models.approximate.methods import get_method
from models.approximate.names import DEFAULT_METHOD, FAMILY_NAMES


def test_registered_families_are_the_names() -> None:
    assert tuple(FAMILIES) == FAMILY_NAMES


def test_default_methods_apply_to_their_task() -> None:
    assert {kind.task for kind in FAMILIES.values()} == set(DEFAULT_METHOD)
    for task, name in DEFAULT_METHOD.items():
        assert task in get_method(name).tasks


def test_names_and_thresholds_load_no_torch() -> None:
    code = (
        "import sys, models.approximate.names, models.approximate.thresholds\n"
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
