"""What a route gets from the app: the application service (``Annotated`` dependency)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.core import Service


def _service(request: Request) -> Service:
    svc: Service = request.app.state.service
    return svc


App = Annotated[Service, Depends(_service)]
