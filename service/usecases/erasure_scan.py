"""``unlearn verify --erasure``: search everything the service keeps for erased data.

The places: every file under ``UNLEARN_HOME`` (the SQLite database and its WAL, journal and
shared memory, the activation caches, the checkpoint store, key files, anything written
there), the key and database files configured outside it, the paths the operator adds (logs,
written reports, exports) and, on PostgreSQL, every raw page of every relation of the schema
(tables, TOAST tables and indexes, dead tuples included) through ``pageinspect``. In each it
looks for the text probes of every erased record and the wrapped bytes of every destroyed
data key (``service.erasure.probes``), and names each remnant.

What it cannot see is said, not passed over: records erased before migration 0008 (no
probes), feature-vector payloads (no text to probe), PostgreSQL without ``pageinspect`` (or
without the right to read raw pages), and TOAST values PostgreSQL compressed.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from service.db.engine import Database
from service.db.tables import DatasetRow, DestroyedKeyRow, RecordRow
from service.erasure.scan import Remnant, Scanner
from service.settings import Settings
from service.states import RecordState

PAGE = 8192
PAGES_PER_QUERY = 256


@dataclass
class ErasureScan:
    erased_records: int = 0  # with text probes
    destroyed_keys: int = 0  # with probes
    unprobed_records: int = 0  # erased records the scan cannot recognise (no probes)
    places: int = 0
    bytes_scanned: int = 0
    remnants: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.remnants


def scan_erasure(db: Database, settings: Settings, extra: Sequence[Path] = ()) -> ErasureScan:
    scanner, report = _scanner(db, settings)
    for where, path in _files(settings, db, extra, report):
        try:
            size = path.stat().st_size
            found = scanner.scan_file(path, where)
        except OSError as exc:
            report.skipped.append(f"{where}: {exc.strerror or exc}")
            continue
        report.places += 1
        report.bytes_scanned += size
        report.remnants += [str(r) for r in found]
    if db.dialect == "postgresql":
        _scan_pages(db, scanner, report)
    return report


def _scanner(db: Database, settings: Settings) -> tuple[Scanner, ErasureScan]:
    report = ErasureScan()
    records: dict[str, dict[str, Any]] = {}
    with db.read() as s:
        for dataset, rid, probes in s.execute(
            select(DatasetRow.name, RecordRow.record_id, RecordRow.probes)
            .join(DatasetRow, DatasetRow.id == RecordRow.dataset_id)
            .where(RecordRow.state == RecordState.ERASED)
        ):
            if probes:
                records[f"{dataset}/{rid}"] = probes
            else:
                report.unprobed_records += 1
        keys = {
            k: (anchor, sha)
            for k, anchor, sha in s.execute(
                select(DestroyedKeyRow.id, DestroyedKeyRow.anchor, DestroyedKeyRow.wrapped_sha256)
            )
        }
    report.erased_records, report.destroyed_keys = len(records), len(keys)
    return Scanner(settings.secret(), records, keys), report


def _files(
    settings: Settings, db: Database, extra: Sequence[Path], report: ErasureScan
) -> Iterator[tuple[str, Path]]:
    """(name shown, path) of every regular file to scan, each once."""
    home = settings.home.resolve()
    roots: list[Path] = [home, settings.kek_file, settings.key_file, *extra]
    database = db.engine.url.database
    if db.dialect == "sqlite" and database and database != ":memory:":
        main = Path(database)
        roots += [main.with_name(main.name + sfx) for sfx in ("", "-wal", "-journal", "-shm")]
    seen: set[Path] = set()
    for root in roots:
        root = root.resolve()
        if not root.exists():
            if root in (Path(p).resolve() for p in extra):
                report.skipped.append(f"{root}: does not exist")
            continue
        for path in sorted(root.rglob("*")) if root.is_dir() else [root]:
            if path in seen or path.is_symlink() or not path.is_file():
                continue
            seen.add(path)
            yield (str(path.relative_to(home)) if path.is_relative_to(home) else str(path)), path


def _scan_pages(db: Database, scanner: Scanner, report: ErasureScan) -> None:
    engine = db.engine.execution_options(isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        relations = _relations(conn)
        if not relations:
            return
        try:
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS pageinspect"))
            conn.execute(text("SELECT get_raw_page(:rel, 0)"), {"rel": relations[0][0]})
        except DBAPIError as exc:  # no extension, or no right to read raw pages
            report.skipped.append(
                "PostgreSQL raw pages (needs the pageinspect extension and the right to run "
                f"get_raw_page): {str(exc.orig).splitlines()[0]}"
            )
            return
        for rel, n_pages in relations:
            report.remnants += [str(r) for r in _scan_relation(conn, scanner, rel, n_pages)]
            report.places += 1
            report.bytes_scanned += n_pages * PAGE


def _relations(conn: Connection) -> list[tuple[str, int]]:
    """Every relation with storage of the current schema, with its TOAST tables."""
    rows = conn.execute(
        text(
            "SELECT c.oid::regclass::text AS rel, pg_relation_size(c.oid) / :page FROM pg_class c "
            "WHERE c.relnamespace = current_schema()::regnamespace "
            "AND c.relkind IN ('r', 'm', 'i') AND pg_relation_size(c.oid) > 0 "
            "UNION SELECT t.oid::regclass::text, pg_relation_size(t.oid) / :page FROM pg_class c "
            "JOIN pg_class t ON t.oid = c.reltoastrelid "
            "WHERE c.relnamespace = current_schema()::regnamespace "
            "AND pg_relation_size(t.oid) > 0 ORDER BY rel"
        ),
        {"page": PAGE},
    )
    return [(str(rel), int(n)) for rel, n in rows]


def _scan_relation(conn: Connection, scanner: Scanner, rel: str, n_pages: int) -> list[Remnant]:
    def pages() -> Iterator[bytes]:
        for start in range(0, n_pages, PAGES_PER_QUERY):
            stop = min(start + PAGES_PER_QUERY, n_pages)
            for (page,) in conn.execute(
                text(
                    "SELECT get_raw_page(:rel, blk) FROM generate_series("
                    "CAST(:first AS integer), CAST(:last AS integer)) AS blk ORDER BY blk"
                ),
                {"rel": rel, "first": start, "last": stop - 1},
            ):
                yield bytes(page)

    out: list[Remnant] = []
    # One place per page, so a remnant names its block.
    for blk, page in enumerate(pages()):
        out += scanner.scan_blobs(f"PostgreSQL {rel} block {blk}", [page])
    return out
