"""Generative Agents scoring against numbers worked out by hand, and the importance heuristic."""
from __future__ import annotations

import numpy as np
import pytest

from simulacra.memory.scoring import Weights, heuristic_importance, min_max, recency, score

HOUR = 3600.0

# Three memories, scored at hour 48:
#   A: last accessed at hour 48 (0 h ago),  importance 2, cosine 0.1
#   B: last accessed at hour 24 (24 h ago), importance 8, cosine 0.5
#   C: last accessed at hour 0  (48 h ago), importance 5, cosine 0.9
# recency  = 0.995**h:     A 1,  B 0.886654, C 0.786154
#   min-max: A 1,  B (0.886654 - 0.786154) / (1 - 0.786154) = 0.100500 / 0.213846 = 0.469961,  C 0
# importance min-max over 2..8: A 0, B 1, C 0.5
# relevance  min-max over 0.1..0.9: A 0, B 0.5, C 1
# weights 1,1,1:    A 1 + 0 + 0 = 1,  B 0.469961 + 1 + 0.5 = 1.969961,  C 0 + 0.5 + 1 = 1.5
# weights .5,3,2:   A 0.5,  B 0.234980 + 3 + 1 = 4.234980,  C 0 + 1.5 + 2 = 3.5
LAST = np.array([48 * HOUR, 24 * HOUR, 0.0])
IMPORTANCE = np.array([2, 8, 5])
COSINE = np.array([0.1, 0.5, 0.9])


def test_hand_computed_example():
    parts = score(48 * HOUR, LAST, IMPORTANCE, COSINE)
    assert parts.recency == pytest.approx([1.0, 0.469961, 0.0], abs=1e-5)
    assert parts.importance == pytest.approx([0.0, 1.0, 0.5])
    assert parts.relevance == pytest.approx([0.0, 0.5, 1.0])
    assert parts.score == pytest.approx([1.0, 1.969961, 1.5], abs=1e-5)


def test_hand_computed_example_with_the_papers_weights():
    parts = score(48 * HOUR, LAST, IMPORTANCE, COSINE, Weights(0.5, 3, 2))
    assert parts.score == pytest.approx([0.5, 4.234980, 3.5], abs=1e-5)
    assert score(48 * HOUR, LAST, IMPORTANCE, COSINE, (0.5, 3, 2)).score == pytest.approx(parts.score)


def test_recency_decays_per_hour_and_ignores_future_access():
    assert recency(np.array([0.0, 1.0, 10.0, -5.0])) == pytest.approx([1.0, 0.995, 0.995 ** 10, 1.0])
    assert recency(np.array([2.0]), decay=0.5) == pytest.approx([0.25])


def test_min_max_of_equal_values_is_one_half():
    assert min_max(np.array([3.0, 3.0])) == pytest.approx([0.5, 0.5])
    assert min_max(np.array([])).size == 0


def test_heuristic_importance_orders_poignant_above_mundane():
    mundane = ["The room is empty.", "I ate breakfast.", "Klaus walked to the cafe."]
    poignant = ["I love Mara! She said she will marry me tomorrow.",
                "My father died last night and I cried for hours."]
    for text in mundane + poignant + ["", "!" * 50, "love " * 500]:
        assert 1 <= heuristic_importance(text) <= 10
    assert max(map(heuristic_importance, mundane)) < min(map(heuristic_importance, poignant))
    assert heuristic_importance("Mara waved.") < heuristic_importance("Mara waved!!")
