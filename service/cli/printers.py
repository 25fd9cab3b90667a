"""How the CLI prints the application's views as text (``--json`` prints the views as they are)."""

from __future__ import annotations

from functools import singledispatch

from rich.markup import escape
from rich.table import Table

from service.cli.common import out
from service.states import RequestState
from service.views import (
    Accepted,
    ApproximateStatus,
    ErasureScanView,
    LabelCount,
    RequestView,
    S3TStatus,
    VerifyReport,
)

FLAGS = ("under_unlearning", "over_unlearning")
# Evidence figures worth a glance on one line (classifiers, then the language model).
HEADLINE = ("UA", "TA_before", "TA", "loss_auc", "min_k_auc", "retain_nll_before", "retain_nll")


def print_accepted(accepted: Accepted) -> None:
    """A new deletion: what was erased, which sequences were cut, what unlearns next."""
    view = accepted.request
    out.print(
        f"request {view.id} {view.state}{' (replayed)' if accepted.replayed else ''}: "
        f"{view.n_records} record(s) erased, due {view.due_at}"
    )
    for cut in view.cut:
        out.print(
            f"  model {cut.model} shard {cut.shard} sequence {cut.sequence}: "
            f"depth {cut.from_depth} -> {cut.to_depth} (retrain job {cut.job})"
        )
    if view.state == RequestState.UNLEARNING:
        for u in view.unlearning:
            out.print(
                f"  approximate model {u.model} will unlearn with {u.method} "
                f"(job {u.job}); it serves its live version until the new one is published"
            )
        out.print(
            "  a flagged result moves the request to needs_review; then: "
            f"unlearn requests resolve {view.id} --accept | --method NAME | --retrain"
        )
    if accepted.not_found:
        out.print(f"  not found: {', '.join(accepted.not_found)}")
    if accepted.status_token is not None:
        # Plain print: the token must never be wrapped. Shown this once (kept as a hash).
        print(f"  status token for the data subject (shown once): {accepted.status_token}")


def print_requests(views: list[RequestView]) -> None:
    table = Table(title="deletion requests")
    for col in ("id", "state", "method", "records", "received", "due", "jobs"):
        table.add_column(col)
    for v in views:
        jobs = " ".join(f"{j.id}:{j.state}" for j in v.jobs)
        table.add_row(
            v.id, v.state, v.method, str(v.n_records), v.received_at[:19], v.due_at[:10], jobs
        )
    out.print(table)


def print_unlearning(view: RequestView) -> None:
    """The request's state and method, then per unlearning attempt its version and flags."""
    out.print(f"request {view.id} {view.state} (method {view.method})")
    for u in view.unlearning:
        head = f"  model {u.model} job {u.job} {u.method}"
        v = u.version
        if v is None:
            out.print(f"{head}: {u.note or 'job ' + u.job_state}")
            continue
        ev = v.evidence or {}
        flags = ", ".join(f for f in FLAGS if ev.get(f)) or "none"
        figures = " ".join(f"{k} {ev[k]}" for k in HEADLINE if k in ev)
        exact = " (exact)" if v.exact else ""
        out.print(
            f"{head}: version {v.version} {v.state}{exact}, flags: {flags}"
            + (f"; {figures}" if figures else ""),
            highlight=False,
        )
    if view.state == RequestState.NEEDS_REVIEW:
        out.print(
            f"  decide: unlearn requests resolve {view.id} --accept | --method NAME | --retrain"
        )


def print_status(views: list[S3TStatus | ApproximateStatus]) -> None:
    """``unlearn status``: per model its shards (or versions), then its jobs in flight."""
    if not views:
        out.print(
            "no models yet: `unlearn import` a dataset, then `unlearn train` "
            "(or `unlearn train-approximate`)"
        )
    for v in views:
        print_model(v)
        print_labels(v.labels)
        for j in v.jobs:
            out.print(
                f"  job {j.id} {j.kind} {j.state} "
                f"{j.progress.done}/{j.progress.total} (attempt {j.attempts})"
            )
        for j in v.failed_jobs if isinstance(v, S3TStatus) else []:
            where = "" if j.sequence_id is None else f" of sequence {j.sequence_id}"
            out.print(
                f"  job {j.id} {j.kind}{where} FAILED after {j.attempts} attempt(s): "
                f"{j.error or 'no error recorded'} (`unlearn restore --model {v.id}` retries)",
                soft_wrap=True,
            )


def print_labels(labels: list[LabelCount]) -> None:
    """Active of trained records per label, then a warning per label running out."""
    if labels:
        counts = ", ".join(f"{escape(x.label)} {x.active}/{x.trained}" for x in labels)
        out.print(f"  active training records per label: {counts}", soft_wrap=True)
    for x in labels:
        if x.warning is not None:
            out.print(f"  [bold yellow]warning:[/] {escape(x.warning)}", soft_wrap=True)


@singledispatch
def print_model(v: object) -> None:
    """One model's status, drawn by the type of its view (one view type per model kind)."""
    raise TypeError(f"no printer for {type(v).__name__}")


@print_model.register(S3TStatus)
def print_s3t(v: S3TStatus) -> None:
    table = Table(title=f"model {v.id} ({v.status}), routing version {v.routing_version}")
    table.add_column("shard", justify="right")
    for b in range(v.budget):
        table.add_column(f"seq {b}")
    table.add_column("served", justify="right")
    for sh in v.shards:
        cells = []
        for q in sh.sequences:
            mark = "*" if q.position == sh.served_sequence else " "
            order = "".join(map(str, q.permutation))
            cells.append(f"{mark}{order} depth {q.valid_depth}/{v.n_slices}")
        served = sh.health if sh.health in ("dead", "empty") else f"depth {sh.served_depth}"
        if sh.health == "degraded":
            served += f" of {v.n_slices} (degraded)"
        table.add_row(str(sh.shard), *cells, served)
    out.print(table)
    dead = [
        f"{sh.shard}/{q.position}" for sh in v.shards for q in sh.sequences if q.valid_depth == 0
    ]
    if dead:
        out.print(f"  dead sequences (shard/position): {' '.join(dead)}", soft_wrap=True)


@print_model.register(ApproximateStatus)
def print_approximate(v: ApproximateStatus) -> None:
    """An approximate model: what it is and its versions."""
    live = v.live_version
    out.print(
        f"model {v.id} ({v.status}): approximate {v.family}, "
        f"unlearns with {v.method}, live version {live if live is not None else '-'}"
    )
    table = Table()
    for col in ("version", "state", "method", "exact", "flags", "published"):
        table.add_column(col)
    for row in v.versions:
        ev = row.evidence or {}
        flags = ", ".join(f for f in FLAGS if ev.get(f)) or ("-" if not ev else "none")
        published = row.published_at
        table.add_row(
            str(row.version),
            row.state,
            row.method,
            "yes" if row.exact else "no",
            flags,
            "-" if published is None else published[:19].replace("T", " "),
        )
    out.print(table)


def print_erasure_scan(report: ErasureScanView) -> None:
    for r in report.remnants:
        out.print(f"[red]remnant:[/] {escape(r)}", highlight=False, soft_wrap=True)
    for s in report.skipped:
        out.print(f"[yellow]not scanned:[/] {escape(s)}", highlight=False, soft_wrap=True)
    if report.unprobed_records:
        out.print(
            f"[yellow]not checkable:[/] {report.unprobed_records} erased record(s) without "
            "probes (erased before migration 0008, or feature vectors): their destroyed keys "
            "only",
            highlight=False,
            soft_wrap=True,
        )
    verdict = "no remnant" if report.ok else f"{len(report.remnants)} remnant(s)"
    out.print(
        f"searched {report.places} place(s), {report.bytes_scanned / 2**20:.1f} MiB, for "
        f"{report.erased_records} erased record(s) and {report.destroyed_keys} destroyed data "
        f"key(s): {verdict}",
        highlight=False,
        soft_wrap=True,
    )


def print_verify(report: VerifyReport) -> None:
    for v in report.violations:
        out.print(f"[red]violation:[/] {v}", highlight=False)
    out.print(
        f"checked {report.checked_models} model(s), {report.checked_checkpoints} served "
        f"checkpoint(s): {'OK' if report.ok else f'{len(report.violations)} violation(s)'}"
    )
