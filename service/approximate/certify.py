"""An approximate model's part of a deletion certificate: which versions the request's jobs
made, the method and its evidence and flags, whether an operator accepted a flagged result,
and that the quarantined payloads are gone."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.approximate.versions import unlearn_attempts
from service.db.tables import DeletionRequestRow, ForgetPayloadRow, ModelRow
from service.states import KindName, VersionState


def decimal_strings(value: Any) -> Any:
    """``value`` with every float as its shortest decimal string: a certificate is canonical
    JSON without floats (RFC 8785 number formatting differs between implementations)."""
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dict):
        return {k: decimal_strings(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [decimal_strings(v) for v in value]
    return value


def approximate_entry(
    s: Session, req: DeletionRequestRow, model: ModelRow, erased_version: int | None
) -> dict[str, Any]:
    attempts = []
    for a in unlearn_attempts(s, req.id, model.id):
        item: dict[str, Any] = {"job": a["job"], "method": a["method"], "exact": a["exact"]}
        made = a["version"]
        if made is None:
            item.update({"version": None, "note": a.get("note")})
        else:
            item.update({k: made[k] for k in ("version", "state", "sha256", "evidence")})
        attempts.append(item)
    final = next(
        (
            a
            for a in reversed(attempts)
            if a.get("state") in (VersionState.LIVE, VersionState.RETIRED)
        ),
        attempts[-1] if attempts else {},
    )
    left = s.scalar(
        select(func.count())
        .select_from(ForgetPayloadRow)
        .where(ForgetPayloadRow.request_id == req.id)
    )
    evidence = final.get("evidence") or {}
    entry: dict[str, Any] = decimal_strings(
        {
            "model": model.id,
            "kind": KindName.APPROXIMATE,
            "family": model.family,
            "config_sha256": model.config_hash,
            "routing_version_before": None if erased_version is None else erased_version - 1,
            "routing_version_after": model.routing_version,
            "exact": bool(final.get("exact", True)),
            "method": final.get("method"),
            "version_after": final.get("version"),
            "weights_sha256": final.get("sha256"),
            "evidence": evidence,
            "flags": {
                "under_unlearning": bool(evidence.get("under_unlearning", False)),
                "over_unlearning": bool(evidence.get("over_unlearning", False)),
            },
            "accepted_by_operator": bool(evidence.get("accepted_by_operator", False)),
            "attempts": attempts,
            "forget_payloads_purged": left == 0,
        }
    )
    return entry
