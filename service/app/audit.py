"""The audit trail in the application service: the chain of events, key rotation, a
request's certificate and the audit report."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from service.app.base import Base

if TYPE_CHECKING:
    from service.audit.keys import Signer


class AuditOps(Base):
    """Mixed into :class:`service.app.service.Service`, which holds these attributes."""

    signer: Signer

    def audit_events(self) -> list[Any]:
        """The whole chain, read in one snapshot."""
        from service.audit.verify import load_chain

        with self.db.snapshot() as s:
            return list(load_chain(s))

    def keyring(self, extra: Sequence[Path] = ()) -> dict[str, Any]:
        """The deployment's trusted keys plus ``extra`` key files or directories."""
        from service.audit.keys import load_keyring

        return load_keyring([self.settings.keyring_dir, *extra])

    def rotate_signing_key(self) -> tuple[str, str]:
        """Replace the signing key; the rotation is an event signed by the old key, so a
        verifier trusting the old key learns the new one. Returns (old, new) key ids."""
        from service.audit import log as audit
        from service.audit.keys import raw_public

        old = self.signer.key_id
        new_id, new = self.signer.rotate()
        with self.write() as s:
            audit.append(
                s,
                "key.rotated",
                {
                    "old_key_id": old,
                    "new_key_id": new_id,
                    "public_key": raw_public(new.public_key()).hex(),
                },
            )  # signed by the old key when this transaction commits
        self.signer.install(new)
        with self.write() as s:
            audit.sign_now(s)
        return old, new_id

    def rotate_master_key(self) -> tuple[str, str, int]:
        """A new key-encryption key (file KEK): (old id, new id, data keys re-wrapped). Other
        processes still hold the old KEK in memory: restart them, then ``rewrap_data_keys``
        once more catches keys they wrapped meanwhile."""
        from service.erasure.kek import rotate

        return rotate(self.db, self.settings)

    def rewrap_data_keys(self) -> int:
        """Every data key wrapped under the current KEK (after a rotation through the
        environment, or to finish one); returns how many were re-wrapped."""
        from service.erasure.kek import load_vault, rewrap_all

        return rewrap_all(self.db, load_vault(self.settings))

    def certificate(self, public_id: str) -> str:
        """The signed certificate of a completed request, exactly as issued."""
        from service.audit.certificates import certificate_document

        with self.db.read() as s:
            return certificate_document(s, public_id)

    def audit_report(
        self, *, start: dt.datetime | None = None, end: dt.datetime | None = None
    ) -> dict[str, Any]:
        """The audit report's numbers over requests received in [start, end)."""
        from service.audit.report import build_report

        with self.db.snapshot() as s:
            report: dict[str, Any] = build_report(s, start=start, end=end)
        return report
