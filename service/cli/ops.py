"""Operator commands on the lineage DB: schema, import, train, serve, worker, delete,
requests, status, lineage, verify, openapi (those of approximate models are in
``service.cli.approximate``). Settings come from the environment (``service.settings``); with
none set, everything lives in ``./unlearn-data`` on SQLite."""

from __future__ import annotations

import dataclasses
import json
import os
import time
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from service.cli.common import Selection, fail, floats, out, progress_bars, user_errors

if TYPE_CHECKING:
    from service.core import Service

EXIT_VIOLATION = 1
db_app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)
requests_app = typer.Typer(help="Deletion requests.", no_args_is_help=True)

Progress = Annotated[bool, typer.Option(help="show progress bars")]
AsJson = Annotated[bool, typer.Option("--json", help="print JSON")]


class RequestState(StrEnum):
    received = "received"
    effective = "effective"
    retraining = "retraining"
    unlearning = "unlearning"
    needs_review = "needs_review"
    completed = "completed"
    failed = "failed"


def open_service(*, migrate_sqlite: bool = True) -> Service:
    """The service from the environment. The embedded SQLite database is migrated on the
    fly; PostgreSQL needs an explicit ``unlearn db upgrade``."""
    from service.core import Service
    from service.db import schema

    svc = Service.open()
    if migrate_sqlite and svc.db.dialect == "sqlite" and not schema.at_head(svc.db.engine):
        svc.upgrade_schema()
    svc.require_schema()
    return svc


def _dump(data: Any) -> None:
    print(json.dumps(data, indent=1, default=str))


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Migrate the database to the newest schema."""
    with user_errors():
        from service.core import Service
        from service.db import schema

        svc = Service.open()
        svc.upgrade_schema()
        out.print(f"schema at {schema.current_revision(svc.db.engine)} ({svc.db.dialect})")


@db_app.command("current")
def db_current() -> None:
    """Show the schema revision of the database and the newest one."""
    with user_errors():
        from service.core import Service
        from service.db import schema

        svc = Service.open()
        out.print(
            f"current {schema.current_revision(svc.db.engine)}, head {schema.head_revision()}"
        )


def import_cmd(
    source: Annotated[str, typer.Argument(help="a .csv/.jsonl file or a built-in dataset")],
    name: Annotated[
        str | None, typer.Option(help="dataset name (default: from the source)")
    ] = None,
    limit: Annotated[
        int | None, typer.Option(help="import only this many records (seeded choice)")
    ] = None,
    seed: Annotated[int, typer.Option(help="seed of the --limit and --hold-out choices")] = 0,
    hold_out: Annotated[
        int | None,
        typer.Option(
            help="also split off this many records (seeded) into dataset NAME-held-out, "
            "never trained on: the held-out set a model is evaluated against"
        ),
    ] = None,
) -> None:
    """Import a dataset: all rows valid, or nothing stored (the error names the line)."""
    with user_errors():
        from models.data import load_dataset

        dataset = load_dataset(source)
        if limit is not None:
            dataset = dataset.subset(limit, seed)
        label = name or Path(source).stem
        parts = [(label, dataset)]
        if hold_out is not None:
            if not 0 < hold_out < len(dataset):
                fail(f"--hold-out must be between 1 and {len(dataset) - 1}")
            train, held = dataset.split(hold_out, seed)
            parts = [(label, train), (f"{label}-held-out", held)]
        svc = open_service()
        summaries = [svc.import_dataset(n, d) for n, d in parts]
    for summary in summaries:
        out.print(
            f"imported {summary.n_records} records into dataset {summary.name!r} "
            f"({summary.kind}, labels {', '.join(summary.label_names)})"
        )


def train(
    dataset: Annotated[str, typer.Option(help="name of an imported dataset")],
    shards: Annotated[int, typer.Option(help="number of shards (m)")] = 2,
    slices: Annotated[int, typer.Option(help="slices per shard (L) = LoRA layer groups")] = 4,
    budget: Annotated[int, typer.Option(help="sequences trained per shard (B)")] = 2,
    selection: Annotated[Selection, typer.Option(help="how sequences are chosen")] = (
        Selection.cyclic
    ),
    deletion_priors: Annotated[
        str | None, typer.Option(help="per-slice deletion probabilities for bms")
    ] = None,
    rank: Annotated[int, typer.Option(help="LoRA rank")] = 8,
    epochs: Annotated[int, typer.Option(help="epochs per training step")] = 2,
    max_length: Annotated[int, typer.Option(help="tokens per example (truncated)")] = 64,
    seed: Annotated[int, typer.Option(help="base seed of the model")] = 0,
    eval_dataset: Annotated[
        str | None,
        typer.Option(help="imported held-out dataset scored after training and every retrain"),
    ] = None,
    wait: Annotated[
        bool, typer.Option(help="train now in this process (embedded) or wait for a worker")
    ] = True,
    progress: Progress = True,
) -> None:
    """Register an S3T model on a dataset and train it."""
    with user_errors():
        model_id = create_and_train(
            dataset,
            shards=shards,
            slices=slices,
            budget=budget,
            selection=selection.value,
            deletion_probs=floats(deletion_priors),
            rank=rank,
            epochs=epochs,
            max_length=max_length,
            seed=seed,
            eval_dataset=eval_dataset,
            wait=wait,
            progress=progress,
        )
    out.print(f"model {model_id}: see `unlearn status --model {model_id}`")


def create_and_train(dataset: str, *, wait: bool, progress: bool, **layout: Any) -> int:
    from models.backbones import default_backbone
    from models.config import TrainConfig
    from service.lineage.datasets import get_dataset
    from service.lineage.registry import ModelSpec

    svc = open_service()
    with svc.db.read() as s:
        ds = get_dataset(s, dataset)
        kind, n_labels = ds.kind, len(ds.label_names)
    config = TrainConfig(
        backbone=default_backbone(kind),
        n_slices=layout["slices"],
        rank=layout["rank"],
        epochs=layout["epochs"],
        max_length=layout["max_length"],
        seed=layout["seed"],
        n_classes=max(2, n_labels),
    )
    spec = ModelSpec(
        n_shards=layout["shards"],
        budget=layout["budget"],
        selection=layout["selection"],
        deletion_probs=layout["deletion_probs"],
        config=config,
        eval_dataset=layout.get("eval_dataset"),
    )
    model_id = svc.create_model(dataset, spec)
    if wait:
        _run_or_wait(svc, model_id, progress)
    return model_id


def _run_or_wait(svc: Service, model_id: int, progress: bool) -> None:
    """Embedded: run the model's queued jobs here. With a broker: poll until they are done."""
    from sqlalchemy import select

    from models.determinism import configure_determinism
    from service.db.tables import JobRow, ModelRow
    from service.jobs.runner import run_job

    if svc.settings.embedded:
        configure_determinism()
        with svc.db.read() as s:
            jobs = list(
                s.scalars(
                    select(JobRow.id).where(JobRow.model_id == model_id, JobRow.state == "queued")
                )
            )
        with progress_bars(progress) as bars:
            for job_id in jobs:
                outcome = run_job(svc.db, svc.settings, job_id, bars)
                if outcome != "done":
                    fail(f"job {job_id} ended {outcome}; see `unlearn status`")
        return
    while True:
        with svc.db.read() as s:
            status = s.scalar(select(ModelRow.status).where(ModelRow.id == model_id))
        if status in ("ready", "failed"):
            break
        time.sleep(2)
    if status == "failed":
        fail(f"model {model_id} failed to train; see `unlearn status --model {model_id}`")


def serve(
    host: Annotated[str, typer.Option(help="interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    demo: Annotated[
        bool,
        typer.Option(help="on first start, import Rotten Tomatoes and train a small model"),
    ] = False,
    demo_records: Annotated[int, typer.Option(help="records the demo imports")] = 2000,
    run_worker: Annotated[
        bool,
        typer.Option(
            "--worker/--no-worker",
            help="with no broker: run jobs in this process (else leave them to `unlearn worker`)",
        ),
    ] = True,
    progress: Progress = True,
) -> None:
    """Run the REST API (and, with no broker configured, a local worker in the same process)."""
    with user_errors():
        import uvicorn

        from service.api.app import create_app

        svc = open_service()
        if demo:
            if "UNLEARN_CHECK_RETRAIN" not in os.environ:
                # The demo proves each retrain against training from scratch (certificates).
                svc.settings = dataclasses.replace(svc.settings, check_retrain=True)
            _demo(svc, demo_records, progress)
        url = f"http://{host}:{port}"
        # Plain print: rich would wrap the long curl lines and break copy-paste.
        print(f"unlearn API on {url}  (docs: {url}/docs)")
        print(_curl_examples(svc, url), flush=True)
        uvicorn.run(create_app(svc, run_worker=run_worker), host=host, port=port, log_level="info")


DEMO_HELD_OUT = 500


def _demo(svc: Service, n_records: int, progress: bool) -> None:
    from sqlalchemy import select

    from service.db.tables import DatasetRow, ModelRow

    with svc.db.read() as s:
        has_model = s.scalar(select(ModelRow.id).where(ModelRow.status == "ready").limit(1))
        has_data = s.scalar(select(DatasetRow.id).where(DatasetRow.name == "rotten-tomatoes"))
    if has_model is not None:
        return
    if has_data is None:
        from models.data import load_dataset

        both = load_dataset("rotten-tomatoes").subset(n_records + DEMO_HELD_OUT, 0)
        data, held_out = both.split(DEMO_HELD_OUT, 1)
        svc.import_dataset("rotten-tomatoes", data)
        svc.import_dataset("rotten-tomatoes-held-out", held_out)
        out.print(
            f"demo: imported {len(data)} Rotten Tomatoes snippets (+{len(held_out)} held out "
            "for the audit report's accuracy plot)"
        )
    out.print("demo: training a 2-shard x 4-slice S3T model (a few minutes on a laptop CPU)")
    create_and_train(
        "rotten-tomatoes",
        shards=2,
        slices=4,
        budget=2,
        selection="cyclic",
        deletion_probs=None,
        rank=8,
        epochs=1,
        max_length=64,
        seed=0,
        eval_dataset="rotten-tomatoes-held-out",
        wait=True,
        progress=progress,
    )


def _curl_examples(svc: Service, url: str) -> str:
    from sqlalchemy import select

    from service.db.tables import ModelRow, RecordRow

    with svc.db.read() as s:
        model = s.scalar(select(ModelRow).order_by(ModelRow.id.desc()).limit(1))
        record = None
        if model is not None:
            record = s.scalar(
                select(RecordRow.record_id)
                .where(RecordRow.dataset_id == model.dataset_id, RecordRow.state == "active")
                .order_by(RecordRow.id)
                .limit(1)
            )
    mid = 1 if model is None else model.id
    return (
        f"try:\n  curl -s {url}/v1/models/{mid}\n"
        f"  curl -s -X POST {url}/v1/models/{mid}/predict -H 'content-type: application/json' "
        '-d \'{"inputs": ["a warm, funny film"]}\'\n'
        f"  curl -s -X POST {url}/v1/deletions -H 'content-type: application/json' "
        f"-H 'Idempotency-Key: demo-1' -d '{{\"record_ids\": [\"{record or 'RECORD_ID'}\"]}}'"
    )


def worker(
    queues: Annotated[str, typer.Option(help="Celery queues to consume")] = "gpu,default",
    concurrency: Annotated[int, typer.Option(help="Celery worker processes")] = 1,
) -> None:
    """Run jobs: a Celery worker when CELERY_BROKER_URL is set, else the local worker loop."""
    with user_errors():
        svc = open_service()
        if not svc.settings.embedded:
            cmd = ["celery", "-A", "workers.app", "worker", "-Q", queues, "-c", str(concurrency)]
            os.execvp(cmd[0], cmd)
        from models.determinism import configure_determinism
        from service.jobs.runner import LocalWorker

        configure_determinism()
        local = LocalWorker(svc.db, svc.settings)
        out.print("local worker running jobs from the database (Ctrl-C stops)")
        local.start()
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            local.stop(timeout=10)


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
            view, replayed, not_found = open_service().delete(req, idempotency_key)
        except NoMatch as exc:
            out.print(f"nothing to erase: {exc} (state completed, reason no_match)")
            return
    if as_json:
        _dump(view)
        return
    out.print(
        f"request {view['id']} {view['state']}{' (replayed)' if replayed else ''}: "
        f"{view['n_records']} record(s) erased, due {view['due_at']}"
    )
    for cut in view["cut"]:
        out.print(
            f"  model {cut['model']} shard {cut['shard']} sequence {cut['sequence']}: "
            f"depth {cut['from_depth']} -> {cut['to_depth']} (retrain job {cut['job']})"
        )
    if view["state"] == "unlearning":
        for u in view["unlearning"]:
            out.print(
                f"  approximate model {u['model']} will unlearn with {u['method']} "
                f"(job {u['job']}); it serves its live version until the new one is published"
            )
        out.print(
            "  a flagged result moves the request to needs_review; then: "
            f"unlearn requests resolve {view['id']} --accept | --method NAME | --retrain"
        )
    if not_found:
        out.print(f"  not found: {', '.join(not_found)}")


@requests_app.command("list")
def requests_list(
    state: Annotated[RequestState | None, typer.Option(help="only requests in this state")] = None,
    limit: Annotated[int, typer.Option(help="newest N")] = 20,
    as_json: AsJson = False,
) -> None:
    """Deletion requests, newest first."""
    with user_errors():
        from sqlalchemy import select

        from service.db.tables import DeletionRequestRow
        from service.lineage.query import request_view

        query = select(DeletionRequestRow).order_by(DeletionRequestRow.id.desc()).limit(limit)
        if state is not None:
            query = query.where(DeletionRequestRow.state == state.value)
        svc = open_service()
        with svc.db.read() as s:
            views = [request_view(s, r) for r in s.scalars(query)]
    if as_json:
        _dump(views)
        return
    table = Table(title="deletion requests")
    for col in ("id", "state", "method", "records", "received", "due", "jobs"):
        table.add_column(col)
    for v in views:
        jobs = " ".join(f"{j['id']}:{j['state']}" for j in v["jobs"])
        table.add_row(
            v["id"],
            v["state"],
            v["method"],
            str(v["n_records"]),
            v["received_at"][:19],
            v["due_at"][:10],
            jobs,
        )
    out.print(table)


@requests_app.command("show")
def requests_show(request_id: Annotated[str, typer.Argument(help="request id")]) -> None:
    """One request with its state timeline and jobs (JSON)."""
    with user_errors():
        from service.lineage.query import get_request, request_view

        svc = open_service()
        with svc.db.read() as s:
            _dump(request_view(s, get_request(s, request_id)))


def status(
    model: Annotated[int | None, typer.Option(help="one model (default: all)")] = None,
    as_json: AsJson = False,
) -> None:
    """Each model's shards x sequences x served depth (or versions), and the jobs in flight."""
    with user_errors():
        from sqlalchemy import select

        from service.db.tables import ModelRow
        from service.lineage.query import model_status
        from service.lineage.registry import get_model

        svc = open_service()
        with svc.db.read() as s:
            models = (
                [get_model(s, model)] if model is not None else list(s.scalars(select(ModelRow)))
            )
            views = [model_status(s, m) for m in models]
    if as_json:
        _dump(views)
        return
    if not views:
        out.print(
            "no models yet: `unlearn import` a dataset, then `unlearn train` "
            "(or `unlearn train-approximate`)"
        )
    for v in views:
        if v["kind"] == "approximate":
            from service.cli.approximate import print_status

            print_status(v)
            _print_jobs(v)
            continue
        table = Table(
            title=f"model {v['id']} ({v['status']}), routing version {v['routing_version']}"
        )
        table.add_column("shard", justify="right")
        for b in range(v["budget"]):
            table.add_column(f"seq {b}")
        table.add_column("served", justify="right")
        for sh in v["shards"]:
            cells = []
            for q in sh["sequences"]:
                mark = "*" if q["position"] == sh["served_sequence"] else " "
                order = "".join(map(str, q["permutation"]))
                cells.append(f"{mark}{order} depth {q['valid_depth']}/{v['n_slices']}")
            served = "dead" if sh["served_depth"] == 0 else f"depth {sh['served_depth']}"
            table.add_row(str(sh["shard"]), *cells, served)
        out.print(table)
        _print_jobs(v)


def _print_jobs(view: dict[str, Any]) -> None:
    for j in view["jobs"]:
        out.print(
            f"  job {j['id']} {j['kind']} {j['state']} "
            f"{j['progress']['done']}/{j['progress']['total']} (attempt {j['attempts']})"
        )


def lineage(
    record_id: Annotated[str, typer.Argument(help="external record id")],
    dataset: Annotated[str | None, typer.Option(help="dataset of the record")] = None,
) -> None:
    """Where a record sits and which checkpoints it shaped (JSON)."""
    with user_errors():
        from service.lineage.query import record_lineage

        svc = open_service()
        with svc.db.read() as s:
            _dump(record_lineage(s, record_id, dataset))


def verify(as_json: AsJson = False) -> None:
    """Check the exactness invariant on the live DB and checkpoint store, and approximate
    models' versions and quarantine (exit 1 if broken)."""
    with user_errors():
        from service.lineage.verify import verify as run_verify

        svc = open_service()
        with svc.db.snapshot() as s:
            report = run_verify(s, svc.store, svc.settings.caches_dir)
    if as_json:
        _dump(report.__dict__ | {"ok": report.ok})
    else:
        for v in report.violations:
            out.print(f"[red]violation:[/] {v}", highlight=False)
        out.print(
            f"checked {report.checked_models} model(s), {report.checked_checkpoints} served "
            f"checkpoint(s): {'OK' if report.ok else f'{len(report.violations)} violation(s)'}"
        )
    if not report.ok:
        raise typer.Exit(EXIT_VIOLATION)


def openapi() -> None:
    """Print the REST API's OpenAPI document."""
    from service.api.app import create_app
    from service.core import Service

    print(json.dumps(create_app(Service.open(), run_worker=False).openapi(), indent=1))


def register(app: typer.Typer) -> None:
    from service.cli import approximate  # imports this module: registered here, not above

    app.add_typer(db_app, name="db")
    app.command("import")(import_cmd)
    app.command()(train)
    app.command("train-approximate")(approximate.train_approximate)
    app.command()(serve)
    app.command()(worker)
    app.command()(delete)
    requests_app.command("resolve")(approximate.requests_resolve)
    app.add_typer(requests_app, name="requests")
    app.command()(status)
    app.command()(lineage)
    app.command()(verify)
    app.command()(openapi)
