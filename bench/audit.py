"""Audit chain benchmark: append 100,000 events, then verify the whole chain.

    python -m bench.audit [--events 100000] [--per-txn 1 10] [--backends sqlite postgres]
                          [--out bench/results/audit.json]

For each backend and transaction size: a fresh, migrated database with the service's signer
installed (a signed head every 100 events, as deployed), ``--events`` events appended through
``service.audit.log.append`` in transactions of ``per_txn`` events (one is what most service
transactions do; a deletion writes about five), then the chain is read back and verified with
its signatures (``unlearn audit verify``'s code path), and exported and verified from the file
(the DB-free path). Events look like the service's: a request id, a 64-hex subject key and
content hashes. Reports events/s for append and both verifications; writes JSON.
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench.common import ROOT, print_table, write_json
from bench.service import SECRET, _fresh


def _event(i: int) -> tuple[str, dict[str, Any]]:
    h = hashlib.sha256(str(i).encode()).hexdigest()
    kinds = ("request.received", "records.erased", "request.effective", "job.finished")
    return kinds[i % 4], {
        "request": str(uuid.UUID(int=i)),
        "subject_key": h,
        "content_hmac": [h[::-1], h],
        "n_records": i % 7,
    }


def run(backend: str, n_events: int, per_txn: int, home: Path) -> dict[str, Any]:
    from service.audit import log as audit
    from service.audit.keys import load_keyring
    from service.audit.verify import export_lines, load_chain, read_export, verify_chain
    from service.core import Service
    from service.settings import Settings

    url = _fresh(backend, home)
    svc = Service.open(Settings(home=home, database_url=url, secret_hex=SECRET))
    svc.upgrade_schema()
    start = time.perf_counter()
    i = 0
    while i < n_events:
        with svc.db.write() as s:
            for _ in range(min(per_txn, n_events - i)):
                audit.append(s, *_event(i))
                i += 1
    append_s = time.perf_counter() - start

    ring = load_keyring([svc.settings.keyring_dir])
    start = time.perf_counter()
    with svc.db.snapshot() as s:
        chain = load_chain(s)
    report = verify_chain(chain, ring)
    verify_s = time.perf_counter() - start
    assert report.ok, report.problem
    export = home / f"chain-{backend}.jsonl"
    export.write_bytes(b"".join(export_lines(chain)))
    start = time.perf_counter()
    offline = verify_chain(read_export(export), ring)
    offline_s = time.perf_counter() - start
    assert offline.ok, offline.problem
    svc.db.dispose()
    return {
        "backend": backend,
        "events": n_events,
        "events_per_transaction": per_txn,
        "chain_length": report.n_events,
        "signed_heads": report.n_signatures,
        "append_s": round(append_s, 2),
        "append_events_per_s": round(n_events / append_s),
        "verify_db_s": round(verify_s, 2),
        "verify_db_events_per_s": round(report.n_events / verify_s),
        "verify_export_s": round(offline_s, 2),
        "verify_export_events_per_s": round(offline.n_events / offline_s),
        "export_mb": round(export.stat().st_size / 2**20, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--per-txn", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgres"])
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/audit.json")
    args = parser.parse_args()
    results = []
    for backend in args.backends:
        for per_txn in args.per_txn:
            with tempfile.TemporaryDirectory(prefix="unlearn-bench-audit-") as tmp:
                results.append(run(backend, args.events, per_txn, Path(tmp)))
            print(results[-1], flush=True)
    print_table(
        f"audit chain, {args.events:,} events (signed head every 100)",
        ["backend", "events/txn", "append ev/s", "verify (DB) ev/s", "verify (file) ev/s"],
        [
            [
                r["backend"],
                r["events_per_transaction"],
                r["append_events_per_s"],
                r["verify_db_events_per_s"],
                r["verify_export_events_per_s"],
            ]
            for r in results
        ],
    )
    write_json(args.out, {"results": results})


if __name__ == "__main__":
    main()
