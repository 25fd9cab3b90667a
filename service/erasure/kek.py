"""The key-encryption key from the settings, and its rotation.

The KEK comes from ``UNLEARN_MASTER_KEY`` or from ``UNLEARN_MASTER_KEY_FILE`` (default
``$UNLEARN_HOME/keys/master.key``, generated 0600). Rotating a file KEK writes the new key
next to the old one (``master.key.next``), re-wraps every data key under it in one
transaction, then replaces the old file: a crash in between leaves both files, and the vault
unwraps with either. Payloads are never touched. Afterwards the old KEK unwraps nothing.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from service.db.engine import Database
from service.erasure import vault as vaults
from service.erasure.scrub import scrub
from service.erasure.vault import Vault
from service.files import replace_atomic
from service.settings import Settings, SettingsError, key_bytes


def _next_file(settings: Settings) -> Path:
    return settings.kek_file.with_name(settings.kek_file.name + ".next")


def load_vault(settings: Settings) -> Vault:
    """The vault of the settings' KEK, with every older KEK still configured as unwrap-only."""
    previous = [key_bytes(k, "UNLEARN_MASTER_KEY_PREVIOUS") for k in settings.master_key_previous]
    pending = _next_file(settings)
    if settings.master_key is None and pending.exists():
        previous.append(key_bytes(pending.read_text().strip(), str(pending)))
    return Vault(settings.kek(), tuple(previous), reload=lambda: load_vault(settings))


def rewrap_all(db: Database, vault: Vault) -> int:
    """Every data key wrapped under ``vault``'s KEK; returns how many were re-wrapped."""
    with db.write() as s:
        n = vaults.rewrap(s, vault)
    scrub(db)
    return n


def rotate(db: Database, settings: Settings) -> tuple[str, str, int]:
    """A new file KEK: (old KEK id, new KEK id, data keys re-wrapped)."""
    if settings.master_key is not None:
        raise SettingsError(
            "the KEK comes from UNLEARN_MASTER_KEY: put the new key there and the old one in "
            "UNLEARN_MASTER_KEY_PREVIOUS for every process, then run `unlearn erasure rewrap`"
        )
    old = settings.kek()
    new = secrets.token_bytes(32)
    pending = _next_file(settings)
    replace_atomic(pending, new.hex().encode("ascii"), mode=0o600)
    n = rewrap_all(db, Vault(new, (old,)))
    replace_atomic(settings.kek_file, new.hex().encode("ascii"), mode=0o600)
    pending.unlink()
    return Vault(old).kek_id, Vault(new).kek_id, n
