"""``unlearn placements``: what sits in a model's shards and slices (JSON)."""

from __future__ import annotations

from typing import Annotated

import typer

from service.cli.common import dump_views, open_service, user_errors


def placements(
    model: Annotated[int, typer.Option(help="the model whose placements to list")],
    shard: Annotated[int | None, typer.Option(help="only this shard", min=0)] = None,
    slice_: Annotated[
        int | None, typer.Option("--slice", help="only this slice (of every shard)", min=0)
    ] = None,
    limit: Annotated[
        int | None, typer.Option(help="list at most this many record ids (default: all)", min=1)
    ] = None,
    cursor: Annotated[str | None, typer.Option(help="the next_cursor of a previous page")] = None,
) -> None:
    """Active and erased counts per shard and slice, and the ids of the active records
    (JSON; with --limit, pass its next_cursor back as --cursor for the next page)."""
    with user_errors():
        page = open_service().placements(
            model, shard=shard, slice_=slice_, limit=limit, cursor=cursor
        )
    dump_views(page)
