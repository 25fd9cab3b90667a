from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from service.db.engine import Database
from service.jobs.files import discarding_unused


def _db(tmp_path: Path) -> Database:
    return Database.from_url(f"sqlite:///{tmp_path / 'x.db'}")


def test_unused_files_go_whether_the_block_ends_or_raises(tmp_path: Path) -> None:
    db = _db(tmp_path)
    deleted: list[str] = []
    seen: list[list[str]] = []

    def in_use(s: Session, shas: list[str]) -> set[str]:
        seen.append(shas)
        return {"b"}

    with discarding_unused(db, lambda: {"c", "b", "a"}, in_use, deleted.append):
        pass
    assert deleted == ["a", "c"] and seen == [["a", "b", "c"]]
    deleted.clear()
    with (
        pytest.raises(RuntimeError, match="boom"),
        discarding_unused(db, lambda: ["b", "d"], in_use, deleted.append),
    ):
        raise RuntimeError("boom")
    assert deleted == ["d"]


def test_nothing_written_reads_nothing(tmp_path: Path) -> None:
    def in_use(s: Session, shas: list[str]) -> set[str]:
        raise AssertionError("no read when nothing was written")

    with discarding_unused(_db(tmp_path), list, in_use, lambda sha: None):
        pass
