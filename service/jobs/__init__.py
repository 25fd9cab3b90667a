"""Background jobs (train a model, retrain a cut sequence): claimed, run and published
through the lineage DB, whichever worker (Celery or the embedded thread) runs them."""
