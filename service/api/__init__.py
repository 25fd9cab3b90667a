"""The REST API (FastAPI): datasets, models, predictions, deletions, health."""
