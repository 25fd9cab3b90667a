"""The ``unlearn`` command line.

Heavy imports (torch, transformers, SQLAlchemy) happen inside the commands that need them, so
``--help`` and the pure commands stay fast and ``import service`` touches nothing.
"""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from typing import Annotated, Any, Literal

import typer
from rich.table import Table

from service.cli import approximate, audit, lineage, models, placements, requests, scoring, serve
from service.cli import datasets as dataset_commands
from service.cli.common import UNWRAPPED, floats, out, user_errors
from service.cli.db import db_app
from service.cli.erasure import erasure_app
from service.cli.experiment import experiment
from service.cli.keys import keys_app

# Off a terminal (a pipe, a file, a log): click's plain help and usage errors, one line per
# paragraph, never wrapped; Rich's panels would be cut to 80 columns (long option names
# truncated, errors broken mid-phrase).
PLAIN = not (sys.stdout.isatty() and sys.stderr.isatty())
if PLAIN:
    typer.core.HAS_RICH = False

app = typer.Typer(
    name="unlearn",
    help="Exact machine unlearning: S3T training, deletion, lineage and audit.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"terminal_width": UNWRAPPED, "max_content_width": UNWRAPPED} if PLAIN else {},
)
# The operator commands, in the order `unlearn --help` lists them.
app.add_typer(db_app, name="db")
app.command("import")(dataset_commands.import_cmd)
app.command()(models.train)
app.command("train-approximate")(approximate.train_approximate)
app.command()(serve.serve)
app.command()(serve.worker)
app.command()(requests.delete)
requests.requests_app.command("resolve")(approximate.requests_resolve)
app.add_typer(requests.requests_app, name="requests")
app.command()(models.status)
app.command()(models.restore)
app.command()(scoring.predict)
app.command()(scoring.evaluate)
app.command()(lineage.lineage)
app.command()(placements.placements)
app.command()(lineage.verify)
app.command()(serve.openapi)
app.add_typer(keys_app, name="keys")
app.add_typer(erasure_app, name="erasure")
audit.register(app)
app.add_typer(experiment, name="experiment")


class CapacityMethod(StrEnum):
    s3t = "s3t"
    sisa = "sisa"
    both = "both"


@app.command("simulate-capacity")
def simulate_capacity_cmd(
    shards: Annotated[int, typer.Option(help="number of shards (m)")] = 5,
    slices: Annotated[int, typer.Option(help="slices per shard (L)")] = 6,
    budget: Annotated[
        list[int] | None, typer.Option(help="S3T budget B (repeat for several)")
    ] = None,
    method: Annotated[CapacityMethod, typer.Option(help="which scheme")] = CapacityMethod.both,
    trials: Annotated[int, typer.Option(help="Monte Carlo trials")] = 20000,
    seed: Annotated[int, typer.Option(help="simulation seed")] = 0,
    deletion_priors: Annotated[
        str | None, typer.Option(help="per-slice deletion probabilities (default uniform)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
) -> None:
    """Expected deletions until every shard is dead, and served depth after t deletions."""
    with user_errors():
        from sharding import s3t_expected_capacity, simulate_capacity, sisa_expected_capacity

        probs = floats(deletion_priors)
        runs: list[tuple[Literal["s3t", "sisa"], int, float]] = []
        if method in (CapacityMethod.s3t, CapacityMethod.both):
            for b in budget or [1, 2, 3, slices]:
                runs.append(("s3t", b, s3t_expected_capacity(shards, slices, b)))
        if method in (CapacityMethod.sisa, CapacityMethod.both):
            runs.append(("sisa", 1, sisa_expected_capacity(shards, slices)))
        rows: list[dict[str, Any]] = []
        for name, b, closed in runs:
            res = simulate_capacity(
                method=name,
                n_shards=shards,
                n_slices=slices,
                budget=b,
                trials=trials,
                seed=seed,
                deletion_probs=probs,
            )
            expected = closed if probs is None else None  # closed forms assume uniform
            rows.append(
                {
                    "method": name,
                    "budget": b,
                    "simulated": res.mean_deletions_to_death,
                    "stderr": res.stderr,
                    "closed_form": expected,
                    "relative_error": None
                    if expected is None
                    else abs(res.mean_deletions_to_death - expected) / expected,
                    "depth_curve": list(res.depth_curve),
                }
            )
    if as_json:
        print(json.dumps({"shards": shards, "slices": slices, "trials": trials, "runs": rows}))
        return
    table = Table(title=f"deletion capacity, m={shards} shards, L={slices} slices, {trials} trials")
    marks = [t for t in (10, 25, 50, 100) if any(t < len(r["depth_curve"]) for r in rows)]
    for col in ("method", "B", "simulated", "closed form", "rel. err"):
        table.add_column(col, justify="right")
    for t in marks:
        table.add_column(f"depth@{t}", justify="right")
    for r in rows:
        curve = r["depth_curve"]
        table.add_row(
            r["method"],
            str(r["budget"]),
            f"{r['simulated']:.1f} ± {r['stderr']:.1f}",
            "-" if r["closed_form"] is None else f"{r['closed_form']:.1f}",
            "-" if r["relative_error"] is None else f"{100 * r['relative_error']:.2f}%",
            *[f"{curve[t]:.2f}" if t < len(curve) else "0.00" for t in marks],
        )
    out.print(table)


@app.command()
def datasets() -> None:
    """List the built-in datasets."""
    from models.data import DATASETS

    for name in DATASETS:
        out.print(name)


if __name__ == "__main__":
    app()
