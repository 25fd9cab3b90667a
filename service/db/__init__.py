"""The lineage database: schema (``tables``), engines and sessions, migrations."""

from service.db.engine import Database, make_engine

__all__ = ["Database", "make_engine"]
