"""VectorIndex: exact search against brute force, removal, and approximate recall."""
from __future__ import annotations

import numpy as np
import pytest

from simulacra.engine.vectors import VectorIndex
from simulacra.errors import InputError


def unit(rows):
    rows = np.asarray(rows, dtype=np.float32)
    return rows / np.linalg.norm(rows, axis=-1, keepdims=True)


def brute(vectors, ids, q, k):
    scores = unit(vectors) @ unit(q)
    order = np.argsort(-scores)[:k]
    return [ids[i] for i in order], scores[order]


def test_exact_search_matches_brute_force():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((300, 16))
    ids = [f"doc{i}" for i in range(300)]  # any hashable id
    index = VectorIndex(16)
    index.add(ids, X)
    for q in rng.standard_normal((5, 16)):
        want_ids, want = brute(X, ids, q, 7)
        got = index.search(q, 7)
        assert [i for i, _ in got] == want_ids
        assert np.allclose([s for _, s in got], want, atol=1e-5)
    assert len(index.search(X[0], 1000)) == 300


def test_remove_and_replace():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((50, 8))
    index = VectorIndex(8)
    index.add(range(50), X)
    assert index.remove(3) and not index.remove(3)
    assert 3 not in index and len(index) == 49
    assert index.search(X[3], 49)[0][0] != 3
    assert all(i != 3 for i, _ in index.search(X[3], 49))
    # moved rows still answer for their own id
    for i in (0, 10, 49):
        assert index.search(X[i], 1)[0][0] == i
    index.add([7], [X[20]])  # same id, new vector
    assert len(index) == 49
    assert {i for i, _ in index.search(X[20], 2)} == {7, 20}


def test_bad_input_is_an_input_error():
    index = VectorIndex(4)
    with pytest.raises(InputError, match="dimensions"):
        index.search(np.ones(5), 3)
    with pytest.raises(InputError, match="ids but"):
        index.add([1, 2], np.ones((3, 4)))
    with pytest.raises(InputError, match="do not fit"):
        index.add([1, 2, 3, 4], np.ones((4, 3)))
    assert index.search(np.ones(4), 3) == []


def test_approximate_recall_at_10_is_at_least_point_nine():
    rng = np.random.default_rng(3)
    n, dim = 4000, 32
    X = rng.standard_normal((n, dim)).astype(np.float32)
    exact = VectorIndex(dim, approx_threshold=None)
    approx = VectorIndex(dim, approx_threshold=1000)
    exact.add(range(n), X)
    approx.add(range(n), X)
    assert approx.approximate and not exact.approximate
    recalls = []
    for q in rng.standard_normal((50, dim)):
        want = {i for i, _ in exact.search(q, 10)}
        got = approx.search(q, 10)
        recalls.append(len(want & {i for i, _ in got}) / 10)
        # the cosines reported are exact, whichever set the graph found
        assert np.allclose([s for _, s in got], unit(X[[i for i, _ in got]]) @ unit(q), atol=1e-5)
    assert np.mean(recalls) >= 0.9, np.mean(recalls)


def test_approximate_index_follows_adds_and_removes():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((400, 16))
    index = VectorIndex(16, approx_threshold=300)
    index.add(range(400), X)
    index.search(X[0], 5)  # builds the graph
    index.remove(5)
    index.add([1000], X[5])
    assert index.search(X[5], 1)[0][0] == 1000
    for i in range(150):  # shrink below the threshold: back to exact search
        index.remove(i + 200)
    assert not index.approximate
    assert index.search(X[17], 1)[0][0] == 17


def test_without_usearch_search_stays_exact(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "usearch", None)  # import fails as if not installed
    monkeypatch.setitem(sys.modules, "usearch.index", None)
    rng = np.random.default_rng(5)
    X = rng.standard_normal((200, 8))
    index = VectorIndex(8, approx_threshold=100)
    index.add(range(200), X)
    q = rng.standard_normal(8)
    assert [i for i, _ in index.search(q, 5)] == brute(X, list(range(200)), q, 5)[0]
    assert not index.approximate
