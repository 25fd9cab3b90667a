"""``sequence_units``: what a sequence's steps train, counted before training."""

from __future__ import annotations

from models.s3t import sequence_units


def test_step_k_trains_the_first_k_slices_of_the_sequence() -> None:
    sizes = [2, 3, 5]
    # steps of (2, 0, 1): slice 2 (5), then 2 and 0 (7), then all three (10)
    assert sequence_units(sizes, (2, 0, 1), epochs=1) == 5 + 7 + 10
    assert sequence_units(sizes, (2, 0, 1), first_step=2, epochs=1) == 7 + 10
    assert sequence_units(sizes, (2, 0, 1), first_step=3, epochs=2) == 2 * 10
    assert sequence_units(sizes, (2, 0, 1), first_step=4, epochs=1) == 0
    assert sequence_units([0, 0], (1, 0), epochs=3) == 0
