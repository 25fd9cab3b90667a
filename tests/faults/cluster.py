"""What the fault tests share: a trained model cloned per test (a PostgreSQL template
database and a copy of its data directory), ``unlearn`` processes configured through the
environment like a deployment, and the tally of lost and twice-applied requests."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import func, select

from service.core import Service
from service.db.tables import DeletionEventRow, DeletionRequestRow, JobRow, RecordRow
from tests.service.conftest import SECRET

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# Short enough for tests of about two minutes; UNLEARN_FAULT_LEASE_S=30 runs them on the
# deployment default.
LEASE_S = int(os.environ.get("UNLEARN_FAULT_LEASE_S", "10"))
TIMEOUT_S = 240.0


class Processes:
    """``unlearn`` subprocesses, each in its own process group (a Celery worker's pool
    included), logging to files the failure messages quote."""

    def __init__(self, logs: Path, env: dict[str, str]) -> None:
        base = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("CELERY_", "UNLEARN_")) and k != "DATABASE_URL"
        }
        self.env = base | {
            "UNLEARN_SECRET": SECRET,
            "UNLEARN_JOB_LEASE_S": str(LEASE_S),
            "PYTHONPATH": str(ROOT),
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        }
        self.env |= env
        self.logs = logs
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        with (self.logs / f"proc{len(self.procs)}.log").open("wb") as log:
            proc = subprocess.Popen(
                [str(BIN / "unlearn"), *args],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.procs.append(proc)
        return proc

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)

    def kill_all(self) -> None:
        for proc in self.procs:
            self.kill(proc)

    def log_tail(self, n: int = 40) -> str:
        out = []
        for log in sorted(self.logs.glob("proc*.log")):
            lines = log.read_text(errors="replace").splitlines()[-n:]
            out.append(f"--- {log.name}\n" + "\n".join(lines))
        return "\n".join(out)

    def wait_for_log(self, proc: subprocess.Popen[bytes], text: str, timeout_s: float = 60) -> None:
        log = self.logs / f"proc{self.procs.index(proc)}.log"
        deadline = time.monotonic() + timeout_s
        while text not in log.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"no {text!r} in the log of {proc.args}\n{self.log_tail()}")
            time.sleep(0.2)


def wait_until(what: str, done: Callable[[], bool], procs: Processes, service: Service) -> None:
    """Poll ``done`` (tolerating a database that is away for a moment); fail on a job that
    failed for good, a process that exited or the timeout."""
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        with contextlib.suppress(Exception):
            if done():
                return
        with contextlib.suppress(Exception), service.db.read() as s:
            for job_id, error in s.execute(
                select(JobRow.id, JobRow.error).where(JobRow.state == "failed")
            ):
                pytest.fail(f"job {job_id} failed:\n{error}\n{procs.log_tail()}")
        for proc in procs.procs[-1:]:
            if proc.poll() is not None:
                pytest.fail(f"{proc.args} exited with {proc.returncode}\n{procs.log_tail()}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}\n{procs.log_tail()}")
        time.sleep(0.2)


def jobs_settled(service: Service) -> Callable[[], bool]:
    def check() -> bool:
        with service.db.read() as s:
            return not s.scalars(
                select(JobRow.id).where(JobRow.state.in_(("queued", "running")))
            ).first()

    return check


@dataclass
class Tally:
    """Deletions a client was told were accepted, against what the database holds."""

    accepted: dict[str, tuple[str, ...]] = field(default_factory=dict)  # request id: records
    lost: list[str] = field(default_factory=list)
    twice: list[str] = field(default_factory=list)
    states: dict[str, int] = field(default_factory=dict)

    def check(self, service: Service) -> Tally:
        """``lost``: an accepted request without its row, or whose records are not erased by
        it; ``twice``: a record erased by more than one request, or a request made
        effective more than once."""
        with service.db.read() as s:
            rows = {r.public_id: r for r in s.scalars(select(DeletionRequestRow))}
            requests_of: dict[str, int] = {}
            for req in rows.values():
                for rid in req.record_ids or ():
                    requests_of[rid] = requests_of.get(rid, 0) + 1
            erased: dict[str, int] = {
                rid: by
                for rid, by in s.execute(
                    select(RecordRow.record_id, RecordRow.erased_by).where(
                        RecordRow.erased_by.is_not(None)
                    )
                )
            }
            effective: dict[int, int] = {
                req: n
                for req, n in s.execute(
                    select(DeletionEventRow.request_id, func.count())
                    .where(DeletionEventRow.state == "effective")
                    .group_by(DeletionEventRow.request_id)
                )
            }
        for public_id, records in self.accepted.items():
            row = rows.get(public_id)
            if row is None or any(erased.get(r) != row.id for r in records):
                self.lost.append(public_id)
            elif effective.get(row.id, 0) > 1 or any(requests_of.get(r, 0) > 1 for r in records):
                self.twice.append(public_id)
        for row in rows.values():
            self.states[row.state] = self.states.get(row.state, 0) + 1
        return self

    def report(self, name: str, **extra: object) -> str:
        facts = " ".join(f"{k}={v}" for k, v in extra.items())
        line = (
            f"FAULT {name}: requests={len(self.accepted)} lost={len(self.lost)} "
            f"applied_twice={len(self.twice)} states={self.states} {facts}"
        )
        print(line)
        return line
