"""The states a deletion request moves through, in order of its life."""

REQUEST_STATES = (
    "received",
    "effective",  # erased from storage and from every exact model's serving
    "retraining",  # an exact model's cut sequences are being retrained
    "unlearning",  # an approximate model's unlearn job has not published yet
    "needs_review",  # an approximate result was flagged; an operator decides
    "completed",
    "failed",
)
