"""The fast path of the tree-structure check accepts exactly what the breadth-first walk accepts."""

from __future__ import annotations

import numpy as np
import pytest

from core.errors import UnsafeModelError
from core.safety.checks_trees import TREE_LEAF, _check_tree_links

L = TREE_LEAF


def _links(left: list[int], right: list[int]) -> None:
    left_a, right_a = np.array(left), np.array(right)
    _check_tree_links("decision tree", left_a, right_a, left_a == L, len(left))


def test_trees_numbered_parent_first_and_otherwise_are_both_accepted():
    _links([1, L, 3, L, L], [2, L, 4, L, L])  # as scikit-learn numbers them: children after parents
    _links([3, L, L, 1, L], [4, L, L, 2, L])  # a valid tree numbered otherwise (the walk decides)


@pytest.mark.parametrize(
    ("left", "right", "message"),
    [
        ([1, 2, L, L], [2, 3, L, L], "two parents"),
        ([1, L, L, 3, L], [2, L, L, 4, L], "cannot be reached"),  # node 3 is its own child
        ([1, L, L, 4, 3, L, L], [2, L, L, 5, 6, L, L], "cannot be reached"),  # 3 and 4: each other's child
    ],
)
def test_loops_and_orphans_are_refused(left, right, message):
    with pytest.raises(UnsafeModelError, match=message):
        _links(left, right)
