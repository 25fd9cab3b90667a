"""``unlearn delete`` and ``unlearn requests list|show`` (``requests resolve`` is in
``service.cli.approximate``)."""

from __future__ import annotations

from typing import Annotated

import typer

from service.cli.common import (
    AsJson,
    dump_views,
    open_service,
    out,
    user_errors,
)
from service.cli.printers import print_accepted, print_requests
from service.states import RequestState

requests_app = typer.Typer(help="Deletion requests.", no_args_is_help=True)


def delete(
    subject: Annotated[str | None, typer.Option(help="data-subject id to erase")] = None,
    record: Annotated[list[str] | None, typer.Option(help="record id to erase (repeat)")] = None,
    dataset: Annotated[str | None, typer.Option(help="only records of this dataset")] = None,
    reason: Annotated[
        str | None, typer.Option(help="free-text reason, kept with the request")
    ] = None,
    idempotency_key: Annotated[str | None, typer.Option(help="replay-safe key")] = None,
    as_json: AsJson = False,
) -> None:
    """Erase a subject's or some records' data; effective when this returns."""
    with user_errors():
        from service.lineage.deletion import DeletionInput, NoMatch

        req = DeletionInput(
            subject_id=subject,
            record_ids=None if not record else tuple(record),
            dataset=dataset,
            reason=reason,
        )
        try:
            accepted = open_service().accept(req, idempotency_key)
        except NoMatch as exc:
            out.print(f"nothing to erase: {exc} (state completed, reason no_match)")
            return
    if as_json:
        dump_views(accepted.request.model_copy(update={"status_token": accepted.status_token}))
        return
    print_accepted(accepted)


@requests_app.command("list")
def requests_list(
    state: Annotated[RequestState | None, typer.Option(help="only requests in this state")] = None,
    limit: Annotated[int, typer.Option(help="newest N")] = 20,
    as_json: AsJson = False,
) -> None:
    """Deletion requests, newest first."""
    with user_errors():
        page = open_service().requests(state=None if state is None else state.value, limit=limit)
    if as_json:
        dump_views(page.items)
        return
    print_requests(page.items)


@requests_app.command("show")
def requests_show(request_id: Annotated[str, typer.Argument(help="request id")]) -> None:
    """One request with its state timeline and jobs (JSON)."""
    with user_errors():
        dump_views(open_service().request(request_id))
