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
``UNLEARN_MASTER_KEY``      key-encryption key of the payloads' data keys (64 hex digits);
                            unset: ``UNLEARN_MASTER_KEY_FILE`` (default
                            ``$UNLEARN_HOME/keys/master.key``, generated 0600 on first use)
``UNLEARN_MASTER_KEY_PREVIOUS``  older KEKs (comma-separated hex) that only unwrap, while
                            ``unlearn erasure rewrap`` moves every data key to the current one
``UNLEARN_RATE_LIMIT``      calls per API key or status token (default ``600/minute``)
``UNLEARN_AUTH_FAILURE_LIMIT``  refused tokens per client address before it gets 429
                            (default ``20/minute``)
``UNLEARN_RATE_LIMIT_STORAGE``  ``limits`` storage URI; default: the broker when it is
                            Redis (shared by every API process), else ``memory://``
``UNLEARN_CORS_ORIGINS``    comma-separated origins allowed cross-site (default: none)
``UNLEARN_JOB_LEASE_S``     seconds without a heartbeat before a running job is taken
                            for dead and taken over (default 30)
``UNLEARN_MAX_SHARDS``,     caps on what one API key may register: shards (16),
``..._SLICES``, ``_BUDGET``,  slices (12), sequences per shard (8), epochs (20), LoRA
``_EPOCHS``, ``_RANK``,     rank (64), tokens per input (512), any other integer
``_TOKENS``, ``_SIZE``,     hyperparameter (4096), dataset upload bytes (16 MiB) and
``_UPLOAD_BYTES``,          models per key (10); the operator CLI is not capped
``_MODELS_PER_KEY``
==========================  =====================================================
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from service.access.caps import Caps
from service.files import create_once

_CAPS = {
    "shards": "UNLEARN_MAX_SHARDS",
    "slices": "UNLEARN_MAX_SLICES",
    "budget": "UNLEARN_MAX_BUDGET",
    "epochs": "UNLEARN_MAX_EPOCHS",
    "rank": "UNLEARN_MAX_RANK",
    "tokens": "UNLEARN_MAX_TOKENS",
    "size": "UNLEARN_MAX_SIZE",
    "upload_bytes": "UNLEARN_MAX_UPLOAD_BYTES",
    "models_per_key": "UNLEARN_MAX_MODELS_PER_KEY",
}


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
    master_key: str | None = field(default=None, repr=False)
    master_key_file: Path | None = None
    master_key_previous: tuple[str, ...] = field(default=(), repr=False)
    sign_every: int = 100
    check_retrain: bool = False
    rate_limit: str = "600/minute"
    auth_failure_limit: str = "20/minute"
    rate_limit_storage: str | None = None
    cors_origins: tuple[str, ...] = ()
    caps: Caps = field(default_factory=Caps)
    # A running job whose heartbeat is older than this is taken for dead and taken over.
    job_lease_s: int = 30
    # Model folders an API caller may name as a backbone (the CLI may name any folder).
    backbone_dirs: tuple[Path, ...] | None = None

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
        master_file = env.get("UNLEARN_MASTER_KEY_FILE")
        caps = Caps(
            **{name: _positive(env, var, getattr(Caps, name)) for name, var in _CAPS.items()}
        )
        origins = tuple(
            o.strip() for o in env.get("UNLEARN_CORS_ORIGINS", "").split(",") if o.strip()
        )
        return cls(
            home=home,
            database_url=url,
            broker_url=env.get("CELERY_BROKER_URL") or None,
            result_backend=env.get("CELERY_RESULT_BACKEND") or None,
            secret_hex=env.get("UNLEARN_SECRET") or None,
            max_body_bytes=max_body,
            signing_key=env.get("UNLEARN_SIGNING_KEY") or None,
            signing_key_file=Path(key_file).resolve() if key_file else None,
            master_key=env.get("UNLEARN_MASTER_KEY") or None,
            master_key_file=Path(master_file).resolve() if master_file else None,
            master_key_previous=tuple(
                k.strip()
                for k in env.get("UNLEARN_MASTER_KEY_PREVIOUS", "").split(",")
                if k.strip()
            ),
            sign_every=int(every),
            check_retrain=env.get("UNLEARN_CHECK_RETRAIN", "0") == "1",
            rate_limit=env.get("UNLEARN_RATE_LIMIT") or "600/minute",
            auth_failure_limit=env.get("UNLEARN_AUTH_FAILURE_LIMIT") or "20/minute",
            rate_limit_storage=env.get("UNLEARN_RATE_LIMIT_STORAGE") or None,
            cors_origins=origins,
            caps=caps,
            job_lease_s=_positive(env, "UNLEARN_JOB_LEASE_S", 30),
            backbone_dirs=tuple(
                Path(d).expanduser().resolve()
                for d in env.get("UNLEARN_BACKBONE_DIRS", "").split(os.pathsep)
                if d.strip()
            )
            or None,
        )

    @property
    def job_lease(self) -> dt.timedelta:
        return dt.timedelta(seconds=self.job_lease_s)

    @property
    def rate_limit_uri(self) -> str:
        """Where the rate-limit counters live (see ``UNLEARN_RATE_LIMIT_STORAGE``)."""
        if self.rate_limit_storage is not None:
            return self.rate_limit_storage
        if self.broker_url is not None and self.broker_url.startswith(("redis://", "rediss://")):
            return self.broker_url
        return "memory://"

    @property
    def backbone_roots(self) -> tuple[Path, ...]:
        """Where the model folders an API caller may name lie (``UNLEARN_BACKBONE_DIRS``,
        default ``<home>/backbones``)."""
        return self.backbone_dirs or (self.home / "backbones",)

    @property
    def admin_key_file(self) -> Path:
        """The embedded default's first admin key (0600), written by ``unlearn serve``."""
        return self.home / "admin.key"

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

    @property
    def kek_file(self) -> Path:
        return self.master_key_file or self.home / "keys" / "master.key"

    def kek(self) -> bytes:
        """The key-encryption key of the data keys; generated (0600) on first use."""
        if self.master_key is not None:
            return key_bytes(self.master_key, "UNLEARN_MASTER_KEY")
        path = self.kek_file
        if not path.exists():
            create_once(path, secrets.token_hex(32).encode("ascii"), mode=0o600)
        return key_bytes(path.read_text().strip(), str(path))

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


def _positive(env: Mapping[str, str], name: str, default: int) -> int:
    text = env.get(name)
    if text is None or text == "":
        return default
    if not text.isdigit() or int(text) < 1:
        raise SettingsError(f"{name} must be a positive integer, got {text!r}")
    return int(text)


def key_bytes(text: str, where: str) -> bytes:
    try:
        value = bytes.fromhex(text)
    except ValueError as exc:
        raise SettingsError(f"{where} must hold 64 hex digits") from exc
    if len(value) != 32:
        raise SettingsError(f"{where} must hold 64 hex digits (a 256-bit key)")
    return value
