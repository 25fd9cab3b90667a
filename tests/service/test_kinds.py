"""The model-kind seam: no branch on a model's kind outside the kinds, and every kind in
the registry implements the whole protocol."""

import ast
import inspect
from pathlib import Path

from service.kind import ModelKind
from service.kinds import KINDS, job_runners
from service.states import JobKind, KindName

ROOT = Path(__file__).resolve().parents[2]
# Where a model's kind may decide behaviour: the protocol, the registry, the two kinds.
ALLOWED = ("service/kind.py", "service/kinds.py", "service/exact/", "service/approximate/")
KIND_VALUES = {k.value for k in KindName}


def _branches(tree: ast.AST) -> list[int]:
    """Lines comparing something named ``kind`` (``model.kind``, ``ModelRow.kind``, a
    ``kind`` variable) with a model-kind value, or anything with a ``KindName`` member."""
    lines = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Compare):
            continue
        sides = [node.left, *node.comparators]
        named_kind = any(
            (isinstance(s, ast.Attribute) and s.attr == "kind")
            or (isinstance(s, ast.Name) and s.id == "kind")
            for s in sides
        )
        values = {
            e.value
            for s in sides
            for e in ([s] if not isinstance(s, ast.Tuple | ast.List | ast.Set) else s.elts)
            if isinstance(e, ast.Constant) and isinstance(e.value, str)
        }
        enum_member = any(
            isinstance(s, ast.Attribute)
            and isinstance(s.value, ast.Name)
            and s.value.id == "KindName"
            for s in sides
        )
        if (named_kind and values & KIND_VALUES) or enum_member:
            lines.append(node.lineno)
    return lines


def test_no_model_kind_branch_outside_the_kinds() -> None:
    found = []
    for package in ("service", "workers", "models", "sharding"):
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel.startswith(ALLOWED):
                continue
            found += [f"{rel}:{n}" for n in _branches(ast.parse(path.read_text(), rel))]
    assert not found, f"branches on a model's kind outside the kinds: {found}"


def test_the_check_catches_a_branch() -> None:
    caught = [
        'if model.kind == "approximate":\n    pass',
        "x = row.kind != 's3t'",
        'ok = kind in ("approximate", "other")',
        "if m.kind is KindName.S3T:\n    pass",
    ]
    for code in caught:
        assert _branches(ast.parse(code)), code
    assert not _branches(ast.parse('if job.kind == "train":\n    pass'))


def test_every_kind_implements_the_protocol() -> None:
    assert set(KINDS) == KIND_VALUES
    wanted = {
        name
        for name, member in inspect.getmembers(ModelKind)
        if inspect.isfunction(member) and not name.startswith("_")
    }
    for name, kind in KINDS.items():
        assert kind.name == name
        missing = {m for m in wanted if not callable(getattr(kind, m, None))}
        assert not missing, f"{name} lacks {missing}"


def test_each_job_kind_has_one_runner() -> None:
    assert set(job_runners()) == {k.value for k in JobKind}
