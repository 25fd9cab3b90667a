"""The ``/v1`` endpoints, one file per noun; each route parses, calls the application
service once and returns its view (``response_model`` on every route)."""

from fastapi import APIRouter

from service.api.auth import RESPONSES
from service.api.routes import datasets, deletions, keys, models

router = APIRouter(prefix="/v1", responses=RESPONSES)
router.include_router(datasets.router)
router.include_router(models.router)
router.include_router(deletions.router)
router.include_router(keys.router)
