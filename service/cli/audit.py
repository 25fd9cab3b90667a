"""``unlearn audit ...`` and ``unlearn certificate ...``: verify the chain (from the DB or an
export, signatures included), export it, rotate the signing key, show and verify deletion
certificates. Verification commands exit 1 naming the first problem."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from service.cli.common import EXIT_VIOLATION, AsJson, dump, fail, open_service, out, user_errors
from service.cli.report import register as register_report

audit_app = typer.Typer(help="The tamper-evident, signed audit trail.", no_args_is_help=True)
certificate_app = typer.Typer(help="Signed deletion certificates.", no_args_is_help=True)

PublicKeys = Annotated[
    list[Path] | None,
    typer.Option(
        "--public-key",
        help="trusted Ed25519 public key file (PEM or hex) or a directory of *.pub; repeatable",
    ),
]


@audit_app.command("verify")
def audit_verify(
    chain: Annotated[
        Path | None,
        typer.Option(help="verify this export (`unlearn audit export`) instead of the DB"),
    ] = None,
    public_key: PublicKeys = None,
    certificate: Annotated[
        list[Path] | None,
        typer.Option(
            help="a deletion certificate you hold: the chain must still contain the event it "
            "pins (catches a cut-back tail); repeatable"
        ),
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Recompute the event chain and check its signed heads; exit 1 naming the first broken
    event. From the DB the trusted keys are the deployment's keyring plus --public-key; an
    export (--chain) needs no database and trusts only --public-key."""
    with user_errors():
        from dataclasses import replace

        from service.audit.keys import load_keyring
        from service.audit.verify import pinned_problem, read_export, verify_chain

        keys = list(public_key or [])
        if chain is not None:
            if not keys:
                fail("--chain needs --public-key: the keys you trust to have signed it")
            ring = load_keyring(keys)
            events = list(read_export(chain))
        else:
            svc = open_service()
            ring = svc.keyring(keys)
            events = svc.audit_events()
        report = verify_chain(events, ring)
        problem = pinned_problem(events, _pins(certificate or [], ring))
        if report.ok and problem is not None:
            report = replace(report, broken_at=report.n_events, problem=problem)
    if as_json:
        dump(report.__dict__ | {"ok": report.ok})
    elif report.ok:
        out.print(
            f"audit chain OK: {report.n_events} events, head {report.head[:16]}, "
            f"{report.n_signatures} signed heads (up to event {report.signed_upto}) by "
            f"key(s) {', '.join(report.key_ids)}",
            highlight=False,
        )
    else:
        out.print(f"[red]audit chain broken:[/] {report.problem}", highlight=False)
    if not report.ok:
        raise typer.Exit(EXIT_VIOLATION)


def _pins(paths: list[Path], ring: dict[str, Any]) -> dict[str, tuple[int, str]]:
    from service.audit.certificates import check_certificate

    pins = {}
    for path in paths:
        check = check_certificate(path.read_bytes(), ring)
        if not check.ok or check.body is None:
            fail(f"certificate {path}: {check.problem}", code=EXIT_VIOLATION)
        chain = check.body["chain"]
        pins[f"certificate {path.name}"] = (int(chain["seq"]), str(chain["hash"]))
    return pins


@audit_app.command("export")
def audit_export(
    out_file: Annotated[Path, typer.Option("--out", help="JSON-lines file to write")],
) -> None:
    """Write the whole chain, one canonical JSON event per line, for DB-free verification."""
    with user_errors():
        from service.audit.verify import export_lines

        events = open_service().audit_events()
        from models.files import write_atomic

        write_atomic(out_file, b"".join(export_lines(events)))
    out.print(f"wrote {len(events)} events to {out_file}", highlight=False)


@audit_app.command("public-key")
def audit_public_key() -> None:
    """Print the current signing key's public key (PEM) for auditors."""
    with user_errors():
        from service.audit.keys import public_pem

        svc = open_service()
        sys.stdout.write(public_pem(svc.signer.public).decode("ascii"))


@audit_app.command("rotate-key")
def audit_rotate_key() -> None:
    """Replace the signing key file with a new key. The rotation is an event signed by the
    old key, so a verifier trusting the old key learns the new one; old public keys stay in
    the keyring for older signatures."""
    with user_errors():
        old, new_id = open_service().rotate_signing_key()
    out.print(f"signing key rotated: {old} -> {new_id}", highlight=False)


@audit_app.command("keygen")
def audit_keygen(
    out_file: Annotated[Path, typer.Option("--out", help="private key file to create (0600)")],
) -> None:
    """Create a new Ed25519 key file (for UNLEARN_SIGNING_KEY_FILE or UNLEARN_SIGNING_KEY)."""
    with user_errors():
        from service.audit.keys import create_private, key_id, load_private_file

        if out_file.exists():
            fail(f"{out_file} exists; refusing to overwrite a key")
        create_private(out_file)
        out.print(f"key {key_id(load_private_file(out_file).public_key())} written to {out_file}")


@certificate_app.command("show")
def certificate_show(
    request_id: Annotated[str, typer.Argument(help="deletion request id")],
    out_file: Annotated[
        Path | None, typer.Option("--out", help="write the certificate file here")
    ] = None,
) -> None:
    """Print (or write) the signed certificate of a completed request, byte for byte as
    issued (the bytes `GET /v1/deletions/{id}/certificate` serves): redirect it to a file and
    check it with `unlearn certificate verify`."""
    with user_errors():
        document = open_service().certificate(request_id).encode("utf-8")
        if out_file is None:
            sys.stdout.flush()
            sys.stdout.buffer.write(document)
            if sys.stdout.isatty():  # only a terminal gets a newline, for the prompt after it
                sys.stdout.buffer.write(b"\n")
            sys.stdout.buffer.flush()
        else:
            out_file.write_bytes(document)
            out.print(f"certificate written to {out_file}", highlight=False)


@certificate_app.command("verify")
def certificate_verify(
    path: Annotated[Path, typer.Argument(help="certificate file")],
    public_key: PublicKeys = None,
    as_json: AsJson = False,
) -> None:
    """Check a certificate with public keys only (no database); exit 1 if it fails."""
    with user_errors():
        from service.audit.certificates import check_certificate
        from service.audit.keys import load_keyring

        if not public_key:
            fail("give --public-key: the key you trust to have signed the certificate")
        check = check_certificate(path.read_bytes(), load_keyring(list(public_key)))
    body = check.body or {}
    if as_json:
        dump({"ok": check.ok, "problem": check.problem, "certificate": check.body})
    elif check.ok:
        out.print(
            f"certificate OK: request {body['request']}, {body['records']['n']} record(s) "
            f"erased, completed {body['completed_at']}, deadline met: {body['deadline_met']}, "
            f"method {body['method']}",
            highlight=False,
        )
    else:
        out.print(f"[red]certificate invalid:[/] {check.problem}", highlight=False)
    if not check.ok:
        raise typer.Exit(EXIT_VIOLATION)


register_report(audit_app)


def register(app: typer.Typer) -> None:
    app.add_typer(audit_app, name="audit")
    app.add_typer(certificate_app, name="certificate")
