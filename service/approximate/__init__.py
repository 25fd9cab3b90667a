"""Approximate models in the service: registered and trained on all their data at once,
unlearned by a configured method on deletion, each result a new model version whose evidence
decides between publishing it and asking an operator (``needs_review``)."""
