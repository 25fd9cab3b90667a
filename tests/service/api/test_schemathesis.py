"""The OpenAPI document is the contract: schemathesis drives every operation in process with
all its checks, authenticated with an admin key, and every answer must conform (status,
content type, headers, body schema, Allow on 405, auth enforced) and none be a 5xx."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, assume, settings
from schemathesis.config._auth import OpenAPIAuthConfig
from schemathesis.specs.openapi.checks import positive_data_acceptance
from starlette.types import ASGIApp, Receive, Scope, Send

from service.api.app import create_app
from service.api.report import _bound
from service.core import Service
from service.lineage.errors import LineageError
from tests.service.clients import new_token
from tests.service.conftest import _settings

OPENAPI = Path(__file__).resolve().parents[3] / "docs" / "openapi.json"
# Where a schema-valid request may still be refused 422 by the service's own validation,
# which a JSON schema cannot state: an uploaded file's rows, a family's or method's named
# hyperparameters, the deployment's caps (``UNLEARN_MAX_*``: settings, not the document).
# The answer must then be a domain problem, never a request-validation one (that would mean
# the document and the models disagree).
SEMANTIC = {
    "/v1/datasets",
    "/v1/models",
    "/v1/models/approximate",
    "/v1/deletions/{public_id}/resolve",
}


class Deferred:
    """The app under test, set by the fixture (the schema is built at import, the service
    per module)."""

    app: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.app is not None
        await self.app(scope, receive, send)


TARGET = Deferred()
# The committed document, which test_api keeps equal to the app's.
schema = schemathesis.openapi.from_dict(json.loads(OPENAPI.read_text()))
schema.app = TARGET
schema.config.update(base_url="http://localhost")


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The app on a fresh service; schemathesis sends an admin key as the document's bearer
    scheme (so its auth checks know which requests lack it)."""
    base = _settings(tmp_path_factory.mktemp("schemathesis"))
    svc = Service.open(
        dataclasses.replace(base, rate_limit="100000/minute", auth_failure_limit="100000/minute")
    )
    svc.upgrade_schema()
    TARGET.app = create_app(svc, run_worker=False)
    schemes = {"bearer": {"bearer": new_token(svc)}}
    schema.config.auth.openapi = OpenAPIAuthConfig(schemes=schemes)
    yield
    TARGET.app = None
    svc.db.dispose()


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@pytest.mark.usefixtures("api")
def test_every_operation_conforms(case: schemathesis.Case[Any]) -> None:
    # The one rule the document cannot state on a read: the audit report's window must not
    # be empty (400, tested in tests/service/audit/test_report.py).
    assume(not _empty_window(case))
    if case.path not in SEMANTIC:
        case.call_and_validate()
        return
    response = case.call_and_validate(excluded_checks=[positive_data_acceptance])
    positive = case.meta is not None and case.meta.generation.mode.is_positive
    if positive and response.status_code == 422:
        assert "errors" not in response.json(), response.text  # a domain refusal only
    elif positive:
        assert response.status_code < 400 or response.status_code in (401, 403, 404, 409, 429)


def _empty_window(case: schemathesis.Case[Any]) -> bool:
    query = case.query or {}
    if case.path != "/v1/audit/report" or not {"from", "to"} <= set(query):
        return False
    try:
        lo, hi = (_bound(str(query[name]), name) for name in ("from", "to"))
    except LineageError:
        return False
    return lo is not None and hi is not None and hi <= lo
