import pytest

from models.layout import GroupLayout


def test_groups_count_from_the_top() -> None:
    layout = GroupLayout(6, 4)
    assert [list(layout.layers(g)) for g in range(1, 5)] == [[5], [4], [3], [2]]
    assert list(layout.adapted_layers) == [2, 3, 4, 5]
    assert layout.group_of(1) is None and layout.group_of(5) == 1 and layout.group_of(2) == 4


def test_multi_layer_groups_and_leftover() -> None:
    layout = GroupLayout(7, 3)
    assert [list(layout.layers(g)) for g in range(1, 4)] == [[5, 6], [3, 4], [1, 2]]
    assert layout.boundary(3) == 1 and layout.group_of(0) is None


def test_bad_layouts() -> None:
    with pytest.raises(ValueError):
        GroupLayout(3, 4)
    with pytest.raises(ValueError):
        GroupLayout(6, 3).layers(4)
