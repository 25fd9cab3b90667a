"""Service benchmark: deletion latency and throughput over HTTP, and 202 -> completed.

    python -m bench.service [--backends sqlite postgres] [--out bench/results/service.json]

For each backend: import Rotten Tomatoes replicated to 100,000+ records (real snippets, distinct
record ids, three records per data subject), train a real S3T model on all of them (small
layout: 8 shards x 2 slices, B=1, 1 epoch, 16 tokens), start ``unlearn serve --no-worker`` and
measure from a client:

* POST /v1/deletions latency, one client, distinct subjects (p50 / p99 / max);
* sustained deletions per second with 16 concurrent clients, every 10th POST a retry of the
  previous key; then the DB must hold exactly one request per key and every retry must have
  returned its original request (zero lost, zero duplicated).

Then, on the demo configuration (2,000 records, 2 shards x 4 slices, B=2), with the embedded
worker in the server process, the time from one deletion's 202 to ``completed`` (erased, the
certificate signed) and to the model serving full depth again (its retrains published).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from bench.common import ROOT, print_table, write_json

SECRET = "b3" * 32
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
BIN = Path(sys.executable).parent
DEMO_LAYOUT = ["--shards", "2", "--slices", "4", "--budget", "2", "--epochs", "1", "--no-progress"]


def _env(home: Path, url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CELERY_BROKER_URL",)}
    env.update(UNLEARN_HOME=str(home), DATABASE_URL=url, UNLEARN_SECRET=SECRET)
    # One key drives every client: the benchmark measures deletions, not the rate limiter
    # (authentication itself is measured: every call carries the key).
    env.setdefault("UNLEARN_RATE_LIMIT", "1000000/minute")
    return env


def _key(home: Path, url: str) -> str:
    """An admin API key made with the CLI, as an operator would."""
    out = subprocess.run(
        [str(BIN / "unlearn"), "keys", "create", "--name", "bench", "--role", "admin", "--json"],
        env=_env(home, url),
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    token: str = json.loads(out)["token"]
    return token


def _fresh(backend: str, home: Path) -> str:
    """A new empty database; ``home`` (caches, checkpoints) is shared by the backends, so the
    second one reuses the activation caches (training itself runs again)."""
    home.mkdir(parents=True, exist_ok=True)
    if backend == "sqlite":
        db = home / "bench-sqlite.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        return f"sqlite:///{db}"
    from sqlalchemy import create_engine, text

    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text("DROP DATABASE IF EXISTS unlearn_bench WITH (FORCE)"))
        conn.execute(text("CREATE DATABASE unlearn_bench"))
    admin.dispose()
    return PG_ADMIN.rsplit("/", 1)[0] + "/unlearn_bench"


def replicated_rt(copies: int) -> Any:
    from models.data import Dataset, Record, load_dataset

    rt = load_dataset("rotten-tomatoes")
    records = []
    for c in range(copies):
        for r in rt.records:
            n = len(records)
            records.append(
                Record(
                    record_id=f"{r.record_id}-c{c}",
                    subject_id=f"person-{n // 3:06d}",
                    label=r.label,
                    text=r.text,
                )
            )
    return Dataset(name="rt-replicated", records=tuple(records), label_names=rt.label_names)


def setup(backend: str, home: Path, copies: int) -> tuple[str, dict[str, Any]]:
    """Import and really train; returns the DB URL and timings."""
    from models.config import TrainConfig
    from models.determinism import configure_determinism
    from service.cli.progress import RichProgress
    from service.core import Service
    from service.jobs.runner import run_job
    from service.lineage.registry import ModelSpec
    from service.settings import Settings

    url = _fresh(backend, home)
    svc = Service.open(Settings(home=home, database_url=url, secret_hex=SECRET))
    svc.upgrade_schema()
    data = replicated_rt(copies)
    t0 = time.perf_counter()
    svc.import_dataset("rt", data)
    t1 = time.perf_counter()
    config = TrainConfig(n_slices=2, rank=4, epochs=1, max_length=16, batch_size=64)
    model_id = svc.create_model("rt", ModelSpec(n_shards=8, budget=1, config=config))
    configure_determinism()
    with RichProgress() as bars:
        from sqlalchemy import select

        from service.db.tables import JobRow

        with svc.db.read() as s:
            job_id = s.scalar(select(JobRow.id).where(JobRow.model_id == model_id))
        assert job_id is not None
        outcome = run_job(svc.db, svc.settings, job_id, bars)
    if outcome != "done":
        raise RuntimeError(f"training the benchmark model ended {outcome}")
    t2 = time.perf_counter()
    svc.db.dispose()
    return url, {"records": len(data), "import_s": t1 - t0, "train_s": t2 - t1}


@contextmanager
def server(home: Path, url: str, port: int, *, worker: bool) -> Iterator[tuple[str, str]]:
    """The API in a subprocess: (its base URL, an admin key's token)."""
    token = _key(home, url)
    log = (home / f"server-{port}.log").open("wb")
    cmd = [str(BIN / "unlearn"), "serve", "--port", str(port), "--no-progress"]
    cmd.append("--worker" if worker else "--no-worker")
    proc = subprocess.Popen(cmd, env=_env(home, url), stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        else:
            raise RuntimeError(f"server did not become ready; see {log.name}")
        yield base, token
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def latency(base: str, token: str, n: int, first_subject: int) -> dict[str, Any]:
    times = []
    with httpx.Client(base_url=base, timeout=60, headers=_auth(token)) as client:
        for i in range(n):
            subject = f"person-{first_subject + i:06d}"
            t = time.perf_counter()
            r = client.post(
                "/v1/deletions", json={"subject_id": subject}, headers={"Idempotency-Key": subject}
            )
            times.append((time.perf_counter() - t) * 1000)
            if r.status_code != 202:
                raise RuntimeError(f"deletion answered {r.status_code}: {r.text[:200]}")
    return {
        "n": n,
        "p50_ms": _pct(times, 0.50),
        "p99_ms": _pct(times, 0.99),
        "max_ms": max(times),
        "mean_ms": statistics.fmean(times),
    }


def sustained(
    base: str, token: str, clients: int, per_client: int, first_subject: int
) -> dict[str, Any]:
    answers: dict[str, list[str]] = {}
    errors: list[str] = []
    lock = threading.Lock()

    def client_loop(c: int) -> None:
        with httpx.Client(base_url=base, timeout=120, headers=_auth(token)) as client:
            previous = None
            for i in range(per_client):
                subject = f"person-{first_subject + c * per_client + i:06d}"
                keys = [subject]
                if i % 10 == 9 and previous is not None:
                    keys.append(previous)  # a client retrying an earlier POST
                for key in keys:
                    body = {"subject_id": key}
                    r = client.post("/v1/deletions", json=body, headers={"Idempotency-Key": key})
                    with lock:
                        if r.status_code == 202:
                            answers.setdefault(key, []).append(r.json()["id"])
                        else:
                            errors.append(f"{key}: {r.status_code} {r.text[:120]}")
                previous = subject

    threads = [threading.Thread(target=client_loop, args=(c,)) for c in range(clients)]
    t = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    elapsed = time.perf_counter() - t
    posts = sum(len(v) for v in answers.values())
    unique = len(answers)
    split = {k for k, ids in answers.items() if len(set(ids)) != 1}
    return {
        "clients": clients,
        "posts": posts,
        "unique_requests": unique,
        "seconds": elapsed,
        "deletions_per_s": unique / elapsed,
        "posts_per_s": posts / elapsed,
        "errors": errors[:10],
        "n_errors": len(errors),
        "keys_with_two_answers": sorted(split)[:10],
        "expected_keys": clients * per_client,
        "ids": {k: v[0] for k, v in answers.items()},
    }


def check_db(url: str, token: str, ids: dict[str, str]) -> dict[str, int]:
    """Every key once, with the id its clients saw (zero lost, zero duplicated). Keys are
    stored as keyed hashes with the key that sent them (``scoped_key``)."""
    from sqlalchemy import create_engine, text

    from service.access.tokens import key_id_of
    from service.lineage.deletion import scoped_key

    owner = f"key:{key_id_of(token)}"
    ids = {scoped_key(bytes.fromhex(SECRET), owner, k): pid for k, pid in ids.items()}

    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT idempotency_key, public_id FROM deletion_requests")).all()
    engine.dispose()
    stored: dict[str, list[str]] = {}
    for key, pid in rows:
        stored.setdefault(key, []).append(pid)
    lost = [k for k in ids if k not in stored]
    dup = [k for k, v in stored.items() if len(v) > 1]
    mismatched = [k for k, pid in ids.items() if k in stored and stored[k] != [pid]]
    return {"lost": len(lost), "duplicated": len(dup), "mismatched": len(mismatched)}


def completion(home: Path, port: int) -> dict[str, Any]:
    """202 -> completed (erased) and 202 -> the model back at full depth (its retrains), for
    one deletion in the demo configuration (embedded worker)."""
    url = f"sqlite:///{home / 'unlearn.db'}"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    env = _env(home, url)
    subprocess.run(
        [str(BIN / "unlearn"), "import", "rotten-tomatoes", "--name", "rt", "--limit", "2000"],
        env=env,
        check=True,
    )
    t = time.perf_counter()
    subprocess.run(
        [str(BIN / "unlearn"), "train", "--dataset", "rt", *DEMO_LAYOUT],
        env=env,
        check=True,
    )
    train_s = time.perf_counter() - t
    with (
        server(home, url, port, worker=True) as (base, token),
        httpx.Client(base_url=base, headers=_auth(token)) as client,
    ):
        rid = _first_record(url)
        t = time.perf_counter()
        r = client.post("/v1/deletions", json={"record_ids": [rid]})
        accepted = time.perf_counter() - t
        req = r.json()
        while req["state"] not in ("completed", "failed"):
            time.sleep(0.2)
            req = client.get(f"/v1/deletions/{req['id']}").json()
        total = time.perf_counter() - t
        model = client.get(f"/v1/models/{req['cut'][0]['model']}").json() if req["cut"] else {}
        status_at_completion = model.get("status")
        # The model's work: every cut sequence retrained and published, no job open.
        while model and (model["jobs"] or model["status"] != "ready"):
            time.sleep(0.5)
            model = client.get(f"/v1/models/{model['id']}").json()
        restored = time.perf_counter() - t
    return {
        "demo_train_s": train_s,
        "post_ms": accepted * 1000,
        "to_completed_s": total,
        "model_status_at_completion": status_at_completion,
        "to_full_depth_s": restored,
        "state": req["state"],
        "cut": req["cut"],
    }


def _first_record(url: str) -> str:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.connect() as conn:
        rid = conn.execute(text("SELECT record_id FROM records ORDER BY id LIMIT 1")).scalar_one()
    engine.dispose()
    return str(rid)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgres"])
    parser.add_argument("--copies", type=int, default=8, help="Rotten Tomatoes copies")
    parser.add_argument("--latency-n", type=int, default=500)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--per-client", type=int, default=50)
    parser.add_argument("--skip-completion", action="store_true")
    parser.add_argument("--workdir", default=str(ROOT / "runs" / "bench-service"))
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "service.json"))
    args = parser.parse_args()

    work = Path(args.workdir)
    results: dict[str, Any] = {"benchmark": "service", "backends": {}}
    shutil.rmtree(work / "data", ignore_errors=True)
    for i, backend in enumerate(args.backends):
        home = work / "data"
        url, prep = setup(backend, home, args.copies)
        with server(home, url, 8600 + i, worker=False) as (base, token):
            lat = latency(base, token, args.latency_n, first_subject=0)
            sus = sustained(
                base, token, args.clients, args.per_client, first_subject=args.latency_n
            )
        ids = sus.pop("ids")
        integrity = check_db(url, token, ids)
        results["backends"][backend] = {**prep, "latency": lat, "sustained": sus, **integrity}
        print(backend, results["backends"][backend], flush=True)
    if not args.skip_completion:
        results["completion"] = completion(work / "demo", 8690)
    rows = [
        (
            b,
            r["records"],
            r["latency"]["p50_ms"],
            r["latency"]["p99_ms"],
            r["sustained"]["deletions_per_s"],
            r["lost"],
            r["duplicated"],
        )
        for b, r in results["backends"].items()
    ]
    print_table(
        "deletion POST over HTTP",
        ["backend", "records", "p50 ms", "p99 ms", "deletions/s (16 clients)", "lost", "dup"],
        rows,
    )
    if "completion" in results:
        c = results["completion"]
        print(
            f"demo: 202 in {c['post_ms']:.0f} ms, completed (erased, certificate signed) after "
            f"{c['to_completed_s']:.1f} s, model back at full depth after "
            f"{c['to_full_depth_s']:.1f} s"
        )
    write_json(Path(args.out), results)


if __name__ == "__main__":
    main()
