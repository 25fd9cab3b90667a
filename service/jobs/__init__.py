"""Background jobs (train, retrain, fit, unlearn): created, claimed, run and published
through the lineage DB, whichever worker (Celery or the embedded thread) runs them."""
