"""``unlearn serve`` (the REST API, optionally with the demo set-up), ``unlearn worker`` and
``unlearn openapi``."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import time
from typing import TYPE_CHECKING, Annotated, Any

import typer

from service.cli.common import Progress, fail, open_service, out, progress_bars, user_errors

if TYPE_CHECKING:
    from fastapi import FastAPI

    from service.views import DemoTargets

BACKLOG = 2048  # uvicorn's default
API_PROCESS = "service.api.app:api_process"  # the factory each of several API processes calls


def serve(
    host: Annotated[str, typer.Option(help="interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    demo: Annotated[
        bool,
        typer.Option(help="on first start, import Rotten Tomatoes and train a small model"),
    ] = False,
    demo_records: Annotated[int, typer.Option(help="records the demo imports")] = 2000,
    processes: Annotated[
        int,
        typer.Option(
            min=1,
            help="API processes sharing the port (the worker, if any, runs beside them in "
            "the supervising process)",
        ),
    ] = 1,
    run_worker: Annotated[
        bool,
        typer.Option(
            "--worker/--no-worker",
            help="with no broker: run jobs in this process (else leave them to `unlearn worker`)",
        ),
    ] = True,
    progress: Progress = True,
) -> None:
    """Run the REST API (and, with no broker configured, a local worker in the same process).
    Its URL is printed once the port is listening (``--port 0``: a free one); a port in use
    fails at once, before any set-up. With ``--processes N`` the API runs in N processes (one
    CPU core each: Python runs one thread at a time), each reading its settings from the same
    environment; the local worker then finds new jobs within 2 s instead of at once."""
    with user_errors(), bind(host, port) as sock:
        from service.api.app import create_app

        svc = open_service()
        if demo:
            if "UNLEARN_CHECK_RETRAIN" not in os.environ:
                # The demo proves each retrain against training from scratch (certificates).
                svc.settings = dataclasses.replace(svc.settings, check_retrain=True)
            svc.set_up_demo(demo_records, progress=lambda: progress_bars(progress), say=out.print)
        if run_worker and svc.settings.embedded:
            from service.cli.progress import log_progress_lines

            log_progress_lines()  # the in-process worker's jobs
        sock.listen(BACKLOG)  # connections queue from here on: now the URL is true
        url = f"http://{_netloc(host, sock.getsockname()[1])}"
        # Plain print: rich would wrap the long curl lines and break copy-paste.
        print(f"unlearn API on {url}  (OpenAPI: {url}/openapi.json, with a key)")
        if svc.db.dialect == "sqlite":
            # The embedded default: one admin key, kept (0600) in the data directory.
            token = svc.embedded_admin_token()
            print(
                f"admin API key (kept in {svc.settings.admin_key_file}; "
                "`unlearn keys create --help` makes narrower ones):"
            )
            print(f"  {token}")
            print(curl_examples(svc.demo_targets(), url, token), flush=True)
        else:
            print("create API keys with `unlearn keys create --name NAME --role ROLE`", flush=True)
        if processes == 1:
            run_server(create_app(svc, run_worker=run_worker), sock)
            return
        worker = svc.local_worker() if run_worker and svc.settings.embedded else None
        if worker is not None:
            from models.determinism import configure_determinism

            configure_determinism()
            worker.start()
        try:
            run_server(API_PROCESS, sock, processes=processes)
        finally:
            if worker is not None:
                worker.stop(timeout=5)


def bind(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` (not listening yet); a port in use, or a host
    that is not this machine's, is a one-line user error."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    # As uvicorn binds: a restart may reuse a port whose old connections linger in TIME_WAIT
    # (on Linux this never shares a port another socket listens on).
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        fail(f"cannot serve on {_netloc(host, port)}: {exc.strerror or exc}")
    return sock


def run_server(
    api: FastAPI | str,
    sock: socket.socket,
    *,
    processes: int = 1,
    log_config: dict[str, Any] | None = None,
    access_log: bool = True,
) -> None:
    """Serve ``api`` on the listening ``sock`` until interrupted: the app itself in this
    process, or, with ``processes`` > 1, an app factory's import path (``"module:name"``)
    that each process calls (uvicorn's supervisor restarts a process that dies).
    ``log_config``: a :func:`logging.config.dictConfig` for every process (default:
    uvicorn's); ``access_log=False`` logs no line per request."""
    import uvicorn
    from uvicorn.config import LOGGING_CONFIG
    from uvicorn.supervisors import Multiprocess

    host, port = sock.getsockname()[:2]
    config = uvicorn.Config(
        api,
        host=host,
        port=port,
        log_level="info",
        backlog=BACKLOG,
        factory=isinstance(api, str),
        workers=processes,
        log_config=LOGGING_CONFIG if log_config is None else log_config,
        access_log=access_log,
    )
    if processes == 1:
        uvicorn.Server(config).run(sockets=[sock])
    else:
        Multiprocess(config, sockets=[sock]).run()


def _netloc(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def curl_examples(targets: DemoTargets, url: str, token: str) -> str:
    """Copy-paste examples, each carrying the key in its header."""
    mid = 1 if targets.model_id is None else targets.model_id
    auth = f"-H 'Authorization: Bearer {token}'"
    record = targets.record_id or "RECORD_ID"
    return (
        f"try:\n  curl -s {auth} {url}/v1/models/{mid}\n"
        f"  curl -s {auth} -X POST {url}/v1/models/{mid}/predict "
        "-H 'content-type: application/json' "
        '-d \'{"inputs": ["a warm, funny film"]}\'\n'
        f"  curl -s {auth} -X POST {url}/v1/deletions -H 'content-type: application/json' "
        f"-H 'Idempotency-Key: demo-1' "
        f'-d \'{{"record_ids": ["{record}"]}}\''
    )


def worker(
    queues: Annotated[
        str,
        typer.Option(
            help="Celery queues to consume: gpu (training), erasure (cache purges: give them "
            "a worker of their own in production, so none waits behind a training), default "
            "(celery beat's reconcile task; every worker also reconciles on its own)"
        ),
    ] = "gpu,erasure,default",
    concurrency: Annotated[int, typer.Option(help="Celery worker processes")] = 1,
) -> None:
    """Run jobs: a Celery worker when CELERY_BROKER_URL is set, else the local worker loop.
    Either one reconciles: jobs of a dead worker are taken over once their lease
    (UNLEARN_JOB_LEASE_S) runs out, and jobs never sent go out when the broker is back."""
    with user_errors():
        svc = open_service()
        if not svc.settings.embedded:
            cmd = ["celery", "-A", "workers.app", "worker", "-Q", queues, "-c", str(concurrency)]
            cmd += ["--loglevel", "INFO"]  # shows the jobs' progress lines
            os.execvp(cmd[0], cmd)
        from models.determinism import configure_determinism
        from service.cli.progress import log_progress_lines

        configure_determinism()
        log_progress_lines()
        local = svc.local_worker()
        out.print("local worker running jobs from the database (Ctrl-C stops)")
        local.start()
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            local.stop(timeout=10)


def openapi() -> None:
    """Print the REST API's OpenAPI document."""
    from service.api.app import create_app

    print(
        json.dumps(
            create_app(open_service(check_schema=False), run_worker=False).openapi(), indent=1
        )
    )
