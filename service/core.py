"""``service.core.Service``: where callers have always found the application service; it
lives in :mod:`service.app`."""

from service.app.service import Service

__all__ = ["Service"]
