"""Per label, how many of a model's training records are still active, with a warning when
a label has (almost) run out: a model retrained without any record of a label can never
predict it again, and the status view is where an operator would notice.

A model's training records are its placements (every record it was trained on, erased or
not). A label warns when none of its training records is active, or when fewer than
``LOW_LABEL_FRACTION`` of them are (5 %: on a balanced dataset, a label erased down to a
twentieth of its share is all but gone from every shard's slices).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from service.db.tables import DatasetRow, ModelRow, PlacementRow, RecordRow
from service.states import RecordState

LOW_LABEL_FRACTION = 0.05


def label_warning(name: str, active: int, trained: int) -> str | None:
    """Why label ``name`` with ``active`` of ``trained`` training records left needs a look."""
    if active == 0:
        return (
            f"label {name!r} has no active training records left "
            f"(of {trained}): a retrained model cannot predict it"
        )
    if active < LOW_LABEL_FRACTION * trained:
        return (
            f"label {name!r} has {active} of {trained} training records left "
            f"(under {LOW_LABEL_FRACTION:.0%})"
        )
    return None


def label_counts(s: Session, model: ModelRow) -> list[dict[str, Any]]:
    """One entry per label of the model's dataset, in label order."""
    dataset = s.get(DatasetRow, model.dataset_id)
    assert dataset is not None
    active = func.sum(case((RecordRow.state == RecordState.ACTIVE, 1), else_=0))
    rows = s.execute(
        select(RecordRow.label, func.count(), active)
        .join(PlacementRow, PlacementRow.record_pk == RecordRow.id)
        .where(PlacementRow.model_id == model.id)
        .group_by(RecordRow.label)
    ).all()
    counts = {label: (int(n), int(a or 0)) for label, n, a in rows}
    out = []
    for i, name in enumerate(dataset.label_names):
        trained, left = counts.get(i, (0, 0))
        out.append(
            {
                "label": name,
                "trained": trained,
                "active": left,
                "warning": label_warning(name, left, trained),
            }
        )
    return out
