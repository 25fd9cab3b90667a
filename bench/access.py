"""What access control costs per API call: authenticating a key against the database, and
charging its rate limit (memory and Redis), on SQLite and PostgreSQL; plus the whole call of a
cheap route over HTTP (in-process ASGI client) with a key.

    python -m bench.access [--n 2000] [--backends sqlite postgres] [--out bench/results/access.json]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import ROOT, print_table, write_json
from service.access.principal import cli_principal
from service.access.ratelimit import RateLimits
from service.core import Service
from service.settings import Settings

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
REDIS = "redis://127.0.0.1:6379/6"


def _timed(fn: Callable[[], object], n: int) -> dict[str, float]:
    for _ in range(min(50, n)):
        fn()  # warm-up: connections, caches
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e6)
    ordered = sorted(times)
    return {
        "n": n,
        "p50_us": ordered[n // 2],
        "p99_us": ordered[min(n - 1, int(0.99 * n))],
        "mean_us": statistics.fmean(times),
    }


def _database(backend: str, home: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{home / 'access.db'}"
    from sqlalchemy import create_engine, text

    name = "unlearn_bench_access"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return PG_ADMIN.rsplit("/", 1)[0] + "/" + name


def run_backend(backend: str, n: int) -> dict[str, Any]:
    from fastapi.testclient import TestClient

    from service.api.app import create_app

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        url = _database(backend, home)
        svc = Service.open(Settings(home=home, database_url=url, secret_hex="ab" * 32))
        svc.upgrade_schema()
        operator = svc.acting_as(cli_principal())
        for i in range(200):  # a realistic key table, not a single row
            operator.create_key(f"key-{i}", role="app")
        token = operator.create_key("bench", role="admin").token
        out: dict[str, Any] = {"keys": 201}
        out["authenticate"] = _timed(lambda: svc.authenticate(token), n)
        svc.settings = Settings(
            home=home, database_url=url, secret_hex="ab" * 32, rate_limit="1000000000/minute"
        )
        with TestClient(create_app(svc, run_worker=False)) as client:
            auth = {"Authorization": f"Bearer {token}"}
            out["http_livez_no_key"] = _timed(lambda: client.get("/livez"), n)
            out["http_deletions_page_with_key"] = _timed(
                lambda: client.get("/v1/deletions?limit=1", headers=auth), n
            )
        svc.db.dispose()
        return out


def run_limits(n: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, uri in (("memory", "memory://"), ("redis", REDIS)):
        limits = RateLimits.open(uri, "1000000000/minute", "20/minute", f"bench-{uuid.uuid4()}")
        out[name] = _timed(lambda limits=limits: limits.charge("key:bench"), n)  # type: ignore[misc]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgres"])
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "access.json"))
    args = parser.parse_args()
    results: dict[str, Any] = {"benchmark": "access", "backends": {}}
    for backend in args.backends:
        results["backends"][backend] = run_backend(backend, args.n)
        print(backend, results["backends"][backend], flush=True)
    results["rate_limit_charge"] = run_limits(args.n)
    rows = []
    for backend, r in results["backends"].items():
        for what in ("authenticate", "http_livez_no_key", "http_deletions_page_with_key"):
            m = r[what]
            rows.append((backend, what, m["p50_us"], m["p99_us"], m["mean_us"]))
    for storage, m in results["rate_limit_charge"].items():
        rows.append((storage, "rate_limit_charge", m["p50_us"], m["p99_us"], m["mean_us"]))
    print_table(
        "access control per call (microseconds)", ["where", "what", "p50", "p99", "mean"], rows
    )
    write_json(Path(args.out), results)


if __name__ == "__main__":
    main()
