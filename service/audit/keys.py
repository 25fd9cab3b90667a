"""Ed25519 signing keys: load, generate, rotate; public keyrings for verification.

The private key comes from ``UNLEARN_SIGNING_KEY`` (PEM or 64 hex digits of the seed) or from
a file (``UNLEARN_SIGNING_KEY_FILE``, default ``$UNLEARN_HOME/keys/signing.pem``, generated on
first use). Every public key the deployment ever signed with stays in the keyring directory
(``keys/public/<key id>.pub``), so signatures made before a rotation still verify. A key id is
the first 16 hex digits of the sha256 of the raw public key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from service.files import create_once, replace_atomic

Encoding, PublicFormat = serialization.Encoding, serialization.PublicFormat


class KeyError_(ValueError):
    """A key that cannot be read, or a key operation that cannot be done."""


def raw_public(pub: Ed25519PublicKey) -> bytes:
    return pub.public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_id(pub: Ed25519PublicKey) -> str:
    return hashlib.sha256(raw_public(pub)).hexdigest()[:16]


def public_pem(pub: Ed25519PublicKey) -> bytes:
    return pub.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)


def parse_private(text: bytes, source: str) -> Ed25519PrivateKey:
    key = _parse(text, source, "private", serialization.load_pem_private_key, _raw_private)
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyError_(f"{source}: not an Ed25519 private key")
    return key


def parse_public(text: bytes, source: str) -> Ed25519PublicKey:
    key = _parse(text, source, "public", serialization.load_pem_public_key, _raw_public)
    if not isinstance(key, Ed25519PublicKey):
        raise KeyError_(f"{source}: not an Ed25519 public key")
    return key


def _raw_private(raw: bytes) -> object:
    return Ed25519PrivateKey.from_private_bytes(raw)


def _raw_public(raw: bytes) -> object:
    return Ed25519PublicKey.from_public_bytes(raw)


def _parse(
    text: bytes, source: str, what: str, pem: Callable[..., object], raw: Callable[[bytes], object]
) -> object:
    """PEM, or the 32 raw key bytes as 64 hex digits."""
    stripped = text.strip()
    try:
        if stripped.startswith(b"-----"):
            return pem(stripped) if what == "public" else pem(stripped, password=None)
        return raw(bytes.fromhex(stripped.decode("ascii")))
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        raise KeyError_(f"{source}: not an Ed25519 {what} key (PEM or 64 hex digits)") from exc


def private_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def verify(pub: Ed25519PublicKey, signature_hex: str, message: bytes) -> bool:
    """Only the exact lowercase hex form counts: a re-cased signature is a changed one."""
    try:
        if bytes.fromhex(signature_hex).hex() != signature_hex:
            return False
        pub.verify(bytes.fromhex(signature_hex), message)
    except (InvalidSignature, ValueError):
        return False
    return True


def load_keyring(paths: list[Path]) -> dict[str, Ed25519PublicKey]:
    """Public keys from files and directories (every ``*.pub`` in a directory)."""
    ring: dict[str, Ed25519PublicKey] = {}
    for path in paths:
        files = sorted(path.glob("*.pub")) if path.is_dir() else [path]
        for f in files:
            try:
                pub = parse_public(f.read_bytes(), str(f))
            except OSError as exc:
                raise KeyError_(f"cannot read public key {f}: {exc.strerror}") from exc
            ring[key_id(pub)] = pub
    return ring


@dataclass
class Signer:
    """The current signing key. A file-backed key is re-read when the file changes, so a
    rotation by ``unlearn audit rotate-key`` reaches running processes without a restart."""

    source: Path | bytes
    keyring_dir: Path
    _key: Ed25519PrivateKey | None = field(default=None, repr=False)
    _stamp: tuple[int, int] | None = None

    @classmethod
    def from_settings(cls, key_env: str | None, key_file: Path, keyring_dir: Path) -> Signer:
        """From the environment's key, else from ``key_file`` (created on first use)."""
        return cls(key_env.encode("ascii") if key_env else key_file, keyring_dir)

    def key(self) -> Ed25519PrivateKey:
        if isinstance(self.source, bytes):
            if self._key is None:
                self._key = parse_private(self.source, "UNLEARN_SIGNING_KEY")
                self.publish(self._key.public_key())
            return self._key
        try:
            if not self.source.exists():
                create_private(self.source)
            st = self.source.stat()
            stamp = (st.st_mtime_ns, st.st_ino)
            if self._key is None or stamp != self._stamp:
                self._key = parse_private(self.source.read_bytes(), str(self.source))
                self._stamp = stamp
                self.publish(self._key.public_key())
        except OSError as exc:
            raise KeyError_(f"cannot read signing key {self.source}: {exc.strerror}") from exc
        return self._key

    @property
    def public(self) -> Ed25519PublicKey:
        return self.key().public_key()

    @property
    def key_id(self) -> str:
        return key_id(self.public)

    def sign(self, message: bytes) -> tuple[str, str]:
        """(key id, signature hex) of ``message``, read from one key."""
        key = self.key()
        return key_id(key.public_key()), key.sign(message).hex()

    def publish(self, pub: Ed25519PublicKey) -> Path:
        """Keep a public key in the keyring directory (idempotent)."""
        path = self.keyring_dir / f"{key_id(pub)}.pub"
        if not path.exists():
            replace_atomic(path, public_pem(pub), mode=0o644)
        return path

    def rotate(self) -> tuple[str, Ed25519PrivateKey]:
        """A new key, written next to the current file (not yet in place: ``install``)."""
        if isinstance(self.source, bytes):
            raise KeyError_(
                "the signing key comes from UNLEARN_SIGNING_KEY: generate a new key with "
                "`unlearn audit keygen`, set it there and restart the service"
            )
        new = Ed25519PrivateKey.generate()
        return key_id(new.public_key()), new

    def install(self, new: Ed25519PrivateKey) -> None:
        assert isinstance(self.source, Path)
        self.publish(new.public_key())
        replace_atomic(self.source, private_pem(new), mode=0o600)


def create_private(path: Path) -> None:
    """Generate a key file unless another process wins the race (then keep theirs)."""
    create_once(path, private_pem(Ed25519PrivateKey.generate()), mode=0o600)


def load_private_file(path: Path) -> Ed25519PrivateKey:
    return parse_private(path.read_bytes(), str(path))
