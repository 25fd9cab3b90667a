"""Alembic environment and versions: the only way the lineage schema changes."""
