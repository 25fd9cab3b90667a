"""Errors of the lineage layer; the API maps each to a problem+json status."""

from __future__ import annotations


class LineageError(Exception):
    """Base class; ``status`` is the HTTP status the API answers with."""

    status = 400
    title = "Bad request"


class NotFound(LineageError):
    status = 404
    title = "Not found"


class Conflict(LineageError):
    status = 409
    title = "Conflict"


class Unprocessable(LineageError):
    status = 422
    title = "Unprocessable request"


class Unavailable(LineageError):
    status = 503
    title = "Service unavailable"
