"""The per-label warning of the model status: none left, or under ``LOW_LABEL_FRACTION``."""

from __future__ import annotations

from service.usecases.labels import LOW_LABEL_FRACTION, label_warning


def test_warns_when_a_label_runs_out() -> None:
    assert LOW_LABEL_FRACTION == 0.05
    assert label_warning("pos", 36, 36) is None
    assert label_warning("pos", 5, 100) is None  # exactly 5% left: not under it
    low = label_warning("pos", 4, 100)
    assert low is not None and "4 of 100" in low and "under 5%" in low
    gone = label_warning("pos", 0, 36)
    assert gone is not None and "no active training records" in gone and "'pos'" in gone
    assert label_warning("never-seen", 0, 0) is not None  # a label the model never trained on
