"""What an approximate model's jobs read, in one snapshot: its training (retain) records, the
quarantined payloads it must forget, and its held-out records."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.approximate.base import Examples, Family
from models.approximate.families import to_examples
from models.data import model_input
from service.db.tables import ForgetPayloadRow, PlacementRow, RecordRow
from service.erasure import vault
from service.states import RecordState


@dataclass(frozen=True)
class Rows:
    inputs: list[Any]
    labels: list[int]

    def __len__(self) -> int:
        return len(self.inputs)

    def head(self, n: int) -> Rows:
        return Rows(self.inputs[:n], self.labels[:n])

    def examples(self, family: Family) -> Examples:
        return to_examples(family, self.inputs, self.labels)


def _rows(s: Session, found: list[Any]) -> Rows:
    """Opened payloads (``service.erasure.vault``) and their labels."""
    inputs = [model_input(p) for p in vault.open_payloads(s, [p for p, _ in found])]
    return Rows(inputs, [int(label) for _, label in found])


def training_rows(s: Session, model_id: int) -> Rows:
    """The model's records that are still active, in id order."""
    found = s.execute(
        select(RecordRow.payload, RecordRow.label)
        .join(PlacementRow, PlacementRow.record_pk == RecordRow.id)
        .where(
            PlacementRow.model_id == model_id,
            PlacementRow.erased_version.is_(None),
            RecordRow.payload.is_not(None),
        )
        .order_by(RecordRow.id)
    ).all()
    return _rows(s, list(found))


def forget_rows(s: Session, model_id: int, request_ids: list[int], after_version: int) -> Rows:
    """Quarantined payloads of the requests' records that the model's weights were trained on:
    erased after ``after_version`` (the data version of the weights' exact ancestor)."""
    found = s.execute(
        select(ForgetPayloadRow.payload, ForgetPayloadRow.label)
        .join(
            PlacementRow,
            (PlacementRow.record_pk == ForgetPayloadRow.record_pk)
            & (PlacementRow.model_id == model_id),
        )
        .where(
            ForgetPayloadRow.request_id.in_(request_ids),
            PlacementRow.erased_version > after_version,
        )
        .order_by(ForgetPayloadRow.record_pk)
    ).all()
    return _rows(s, list(found))


def held_out_rows(s: Session, dataset_id: int) -> Rows:
    found = s.execute(
        select(RecordRow.payload, RecordRow.label)
        .where(RecordRow.dataset_id == dataset_id, RecordRow.state == RecordState.ACTIVE)
        .order_by(RecordRow.id)
    ).all()
    return _rows(s, list(found))
