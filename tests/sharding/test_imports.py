"""Dependency rule: ``sharding`` imports nothing of ours and no torch or database code."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import sharding

PACKAGE = Path(sharding.__file__).parent
ALLOWED_ROOTS = {"sharding", "numpy", "scipy"} | set(sys.stdlib_module_names)


def test_import_pulls_in_no_heavy_or_project_modules() -> None:
    code = (
        "import json, sys, sharding\n"
        "print(json.dumps(sorted({name.split('.')[0] for name in sys.modules})))\n"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    loaded = set(json.loads(output))
    assert "sharding" in loaded
    assert not loaded & {"torch", "sqlalchemy", "service", "models", "workers"}


def test_sources_only_import_numpy_scipy_and_the_stdlib() -> None:
    for path in sorted(PACKAGE.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                assert node.level == 0, f"{path.name}: use absolute imports"
                roots = {(node.module or "").split(".")[0]}
            else:
                continue
            assert roots <= ALLOWED_ROOTS, f"{path.name} imports {roots - ALLOWED_ROOTS}"


def test_public_names_are_exported() -> None:
    assert sorted(sharding.__all__) == sorted(set(sharding.__all__))
    for name in sharding.__all__:
        assert getattr(sharding, name) is not None
