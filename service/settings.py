"""Settings from the environment; the defaults are the embedded, serverless set-up.

==========================  =====================================================
``UNLEARN_HOME``            data directory (default ``./unlearn-data``): SQLite file,
                            checkpoints, activation caches, the deployment secret
``DATABASE_URL``            SQLAlchemy URL (default ``sqlite:///$UNLEARN_HOME/unlearn.db``);
                            production: ``postgresql+psycopg://user@host/db``
``CELERY_BROKER_URL``       e.g. ``redis://host:6379/0``; unset: jobs run in a local
                            worker thread inside ``unlearn serve``
``CELERY_RESULT_BACKEND``   optional; the lineage DB, not this, is the source of truth
``UNLEARN_SECRET``          deployment secret for subject keys and placement (hex);
                            unset: generated once into ``$UNLEARN_HOME/secret.key``
``UNLEARN_MAX_BODY_BYTES``  largest accepted request body (default 32 MiB)
``UNLEARN_SIGNING_KEY``     Ed25519 private key of the audit trail (PEM or 64 hex digits);
                            unset: ``UNLEARN_SIGNING_KEY_FILE`` (default
                            ``$UNLEARN_HOME/keys/signing.pem``, generated on first use)
``UNLEARN_SIGN_EVERY``      sign the audit chain's head every N events (default 100), and
                            at every request completion
``UNLEARN_CHECK_RETRAIN``   ``1``: every retrain also trains its sequence from scratch and
                            records whether the hashes match (the certificate's evidence)
==========================  =====================================================
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from service.files import create_once


class SettingsError(ValueError):
    pass


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    broker_url: str | None = None
    result_backend: str | None = None
    secret_hex: str | None = field(default=None, repr=False)
    max_body_bytes: int = 32 * 1024 * 1024
    signing_key: str | None = field(default=None, repr=False)
    signing_key_file: Path | None = None
    sign_every: int = 100
    check_retrain: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        home = Path(env.get("UNLEARN_HOME", "unlearn-data")).resolve()
        url = env.get("DATABASE_URL") or f"sqlite:///{home / 'unlearn.db'}"
        try:
            max_body = int(env.get("UNLEARN_MAX_BODY_BYTES", str(32 * 1024 * 1024)))
        except ValueError as exc:
            raise SettingsError("UNLEARN_MAX_BODY_BYTES must be an integer") from exc
        every = env.get("UNLEARN_SIGN_EVERY", "100")
        if not every.isdigit() or int(every) < 1:
            raise SettingsError("UNLEARN_SIGN_EVERY must be a positive integer")
        key_file = env.get("UNLEARN_SIGNING_KEY_FILE")
        return cls(
            home=home,
            database_url=url,
            broker_url=env.get("CELERY_BROKER_URL") or None,
            result_backend=env.get("CELERY_RESULT_BACKEND") or None,
            secret_hex=env.get("UNLEARN_SECRET") or None,
            max_body_bytes=max_body,
            signing_key=env.get("UNLEARN_SIGNING_KEY") or None,
            signing_key_file=Path(key_file).resolve() if key_file else None,
            sign_every=int(every),
            check_retrain=env.get("UNLEARN_CHECK_RETRAIN", "0") == "1",
        )

    @property
    def checkpoints_dir(self) -> Path:
        return self.home / "checkpoints"

    @property
    def caches_dir(self) -> Path:
        return self.home / "caches"

    @property
    def key_file(self) -> Path:
        return self.signing_key_file or self.home / "keys" / "signing.pem"

    @property
    def keyring_dir(self) -> Path:
        """Every public key the audit trail was ever signed with."""
        return self.home / "keys" / "public"

    @property
    def embedded(self) -> bool:
        """No broker configured: jobs run in-process."""
        return self.broker_url is None

    def secret(self) -> bytes:
        """The deployment secret; generated (0600) into the data directory on first use."""
        if self.secret_hex is not None:
            try:
                value = bytes.fromhex(self.secret_hex)
            except ValueError as exc:
                raise SettingsError("UNLEARN_SECRET must be hex") from exc
            if len(value) < 16:
                raise SettingsError("UNLEARN_SECRET must be at least 16 bytes (32 hex digits)")
            return value
        path = self.home / "secret.key"
        if not path.exists():
            create_once(path, secrets.token_hex(32).encode("ascii"), mode=0o600)
        return bytes.fromhex(path.read_text().strip())
