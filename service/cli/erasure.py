"""``unlearn erasure rotate-kek|rewrap``: the key-encryption key of the payloads' data keys."""

from __future__ import annotations

import typer

from service.cli.common import open_service, user_errors

erasure_app = typer.Typer(
    help="Crypto-shredding: the key-encryption key (KEK) of the payloads' data keys.",
    no_args_is_help=True,
)


@erasure_app.command("rotate-kek")
def rotate_kek() -> None:
    """Replace the file KEK ($UNLEARN_HOME/keys/master.key) and re-wrap every data key under
    it; payloads are not touched and the old KEK unwraps nothing afterwards. Restart the API
    and workers, then run `unlearn erasure rewrap` once more."""
    with user_errors():
        old, new, n = open_service().rotate_master_key()
    print(f"KEK {old} -> {new}: {n} data key(s) re-wrapped")


@erasure_app.command("rewrap")
def rewrap() -> None:
    """Re-wrap every data key under the current KEK (after setting a new UNLEARN_MASTER_KEY
    with the old one in UNLEARN_MASTER_KEY_PREVIOUS, or to finish a rotation)."""
    with user_errors():
        n = open_service().rewrap_data_keys()
    print(f"{n} data key(s) re-wrapped under the current KEK")
