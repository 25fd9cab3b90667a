"""Signed deletion certificates: built when a request completes, verified offline.

A certificate is one canonical JSON object (RFC 8785) holding what was erased (count and
keyed content hashes, never payloads or raw subject ids), who asked (the principal: key id and
name), when, the deadline, per model the
routing versions and the checkpoints cut and those that replaced them, the retrain
evidence, the method and the chain position of the completion event, plus an Ed25519
signature over the canonical form of everything else. The stored and served document is
exactly that canonical text, so any changed byte fails verification: either the signature
or the canonical-form check.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.audit import log as audit
from service.audit.jcs import canonical
from service.audit.keys import verify
from service.db.base import utcnow
from service.db.tables import (
    CertificateRow,
    DeletionRequestRow,
    ModelRow,
    PlacementRow,
    RecordRow,
)
from service.kinds import kind_of
from service.lineage.errors import Conflict, NotFound
from service.lineage.query import get_request
from service.states import RequestState

KIND = "unlearn.deletion-certificate"
VERSION = 2  # 2: records carry content_hmac (keyed), and the erasure mechanism
_DOMAIN = b"unlearn deletion certificate\n"


def _iso(value: Any) -> str | None:
    return None if value is None else value.isoformat()


def certificate_body(
    s: Session, req: DeletionRequestRow, completed: audit.EventRef
) -> dict[str, Any]:
    """Everything the certificate states, before signing."""
    hashes = sorted(s.scalars(select(RecordRow.content_hmac).where(RecordRow.erased_by == req.id)))
    assert req.completed_at is not None
    models = _models(s, req)
    method = "exact"
    if any(not m.get("exact", True) for m in models):
        method = "approximate"
    return {
        "certificate": KIND,
        "version": VERSION,
        "request": req.public_id,
        "subject_key": req.subject_key,
        "requested_by": req.requested_by,
        "dataset": req.dataset,
        "outcome": req.outcome,
        "records": {"n": len(hashes), "content_hmac": hashes},
        "erasure": {
            "mechanism": "crypto-shredding",
            "cipher": "AES-256-GCM",
            "payloads": "nulled",
            "data_keys_destroyed": req.data_keys_destroyed,
            "at": _iso(req.effective_at),
        },
        "received_at": _iso(req.received_at),
        "effective_at": _iso(req.effective_at),
        "completed_at": _iso(req.completed_at),
        "due_at": _iso(req.due_at),
        "deadline_met": req.completed_at <= req.due_at,
        "method": method,
        "models": models,
        "chain": {"seq": completed.seq, "hash": completed.hash},
    }


def _models(s: Session, req: DeletionRequestRow) -> list[dict[str, Any]]:
    """One entry per model that held the request's records, as the model's kind writes it."""
    versions = s.execute(
        select(PlacementRow.model_id, func.min(PlacementRow.erased_version))
        .join(RecordRow, RecordRow.id == PlacementRow.record_pk)
        .where(RecordRow.erased_by == req.id)
        .group_by(PlacementRow.model_id)
        .order_by(PlacementRow.model_id)
    ).all()
    out = []
    for model_id, version in versions:
        model = s.get(ModelRow, model_id)
        assert model is not None
        out.append(kind_of(model).certificate_entry(s, req, model, version))
    return out


def issue(s: Session, req: DeletionRequestRow, completed: audit.EventRef) -> CertificateRow | None:
    """Sign and store the certificate (in the completing transaction); ``None`` when the
    session has no signer (a bare ``Database`` outside the service)."""
    sealer = s.info.get(audit.SEALER)
    if sealer is None:
        return None
    body = certificate_body(s, req, completed)
    body["issued_at"] = utcnow().isoformat()
    kid, signature = sealer.signer.sign(_DOMAIN + canonical(body))
    body["signature"] = {"algorithm": "Ed25519", "key_id": kid, "value": signature}
    document = canonical(body)
    digest = hashlib.sha256(document).hexdigest()
    row = CertificateRow(
        request_id=req.id, key_id=kid, sha256=digest, document=document.decode("utf-8")
    )
    s.add(row)
    s.flush()
    audit.append(
        s, "certificate.issued", {"request": req.public_id, "sha256": digest, "key_id": kid}
    )
    return row


@dataclass(frozen=True)
class CertificateCheck:
    ok: bool
    problem: str | None = None
    body: dict[str, Any] | None = None


def check_certificate(raw: bytes, keys: Mapping[str, Ed25519PublicKey]) -> CertificateCheck:
    """Verify a certificate file with public keys only (no database)."""
    try:
        doc = json.loads(raw)
    except ValueError:
        return CertificateCheck(False, "not JSON")
    if not isinstance(doc, dict) or doc.get("certificate") != KIND:
        return CertificateCheck(False, "not an unlearn deletion certificate")
    try:
        again = canonical(doc)
    except TypeError as exc:
        return CertificateCheck(False, f"not canonical JSON ({exc})")
    if raw not in (again, again + b"\n"):
        return CertificateCheck(False, "not in its canonical form: the bytes were changed")
    sig = doc.pop("signature", None)
    if not isinstance(sig, dict) or sig.get("algorithm") != "Ed25519":
        return CertificateCheck(False, "no Ed25519 signature")
    pub = keys.get(str(sig.get("key_id")))
    if pub is None:
        return CertificateCheck(False, f"signed by key {sig.get('key_id')}, not a given public key")
    if not verify(pub, str(sig.get("value")), _DOMAIN + canonical(doc)):
        return CertificateCheck(False, "the signature does not match the certificate")
    return CertificateCheck(True, body=doc)


def get_certificate(s: Session, request_pk: int) -> CertificateRow | None:
    return s.scalar(select(CertificateRow).where(CertificateRow.request_id == request_pk))


def certificate_document(s: Session, public_id: str) -> str:
    """The signed certificate of a completed request, exactly as issued."""
    req = get_request(s, public_id)
    if req.state != RequestState.COMPLETED:
        raise Conflict(
            f"request {public_id} is {req.state}: its certificate is issued when it completes"
        )
    cert = get_certificate(s, req.id)
    if cert is None:
        raise NotFound(f"request {public_id} completed before certificates were issued")
    return cert.document
