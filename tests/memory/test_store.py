"""MemoryStore: round trips, validation, search scoring with a controlled clock, sync, export."""
from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest

from simulacra.engine.embed import Embedder, HashEmbedder
from simulacra.errors import ConfigError, InputError
from simulacra.memory import MemoryStore, heuristic_importance, memory_path

HOUR, DAY = 3600.0, 86400.0


class Clock:
    def __init__(self, t: float = 1_000_000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


class Fixed(Embedder):
    """Texts of the form 'cos=0.5' embed at that cosine to the query 'q' (first axis)."""

    name, dim = "fixed-3", 3

    def __init__(self):
        self.texts = 0

    def _embed(self, texts):
        self.texts += len(texts)
        out = []
        for t in texts:
            c = float(t.split("=")[1].split()[0]) if t.startswith("cos=") else 1.0
            out.append([c, np.sqrt(1 - c * c), 0.0])
        return np.array(out)


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def store(tmp_path, clock):
    with MemoryStore(tmp_path / "state" / "memory.db", HashEmbedder(), clock=clock) as s:
        yield s


def test_add_get_round_trip(store, clock):
    m = store.add("Mara runs the tavern by the river.")
    assert m.created_at == m.last_accessed == clock.t and m.kind == "observation"
    assert m.importance == heuristic_importance(m.text)
    got = store.get(m.id)
    assert got == m
    assert np.array_equal(got.embedding, HashEmbedder().embed([m.text])[0])
    r = store.add("Mara hides something.", kind="reflection", importance=7, cites=[m.id], at=5.0,
                  meta={"by": "test"})
    assert store.get(r.id).cites == (m.id,) and store.get(r.id).meta == {"by": "test"}
    assert store.get(r.id).created_at == 5.0
    assert [x.id for x in store.all("reflection")] == [r.id] and len(store) == 2
    assert store.get(999) is None


@pytest.mark.parametrize("kwargs, match", [
    ({"text": "  "}, "non-empty"), ({"text": "x", "kind": "dream"}, "unknown memory kind"),
    ({"text": "x", "importance": 0}, "1 to 10"), ({"text": "x", "importance": 11}, "1 to 10"),
    ({"text": "x", "importance": 2.5}, "1 to 10"), ({"text": "x", "cites": [42]}, "cannot cite"),
])
def test_bad_adds_raise_and_write_nothing(store, kwargs, match):
    with pytest.raises(InputError, match=match):
        store.add(**kwargs)
    assert len(store) == 0


def test_forget_drops_the_memory_and_citations_to_it(store):
    a, b = store.add("first"), store.add("second")
    r = store.add("both", kind="reflection", cites=[a.id, b.id])
    assert store.forget(a.id) and not store.forget(a.id)
    assert store.get(a.id) is None and store.get(r.id).cites == (b.id,)
    assert all(h.memory.id != a.id for h in store.search("first", 10))
    assert store.add("third").id == r.id + 1  # ids are never reused


def test_search_scores_like_the_hand_computed_example(tmp_path, clock):
    # The same three memories as tests/memory/test_scoring.py, stored and retrieved.
    store = MemoryStore(tmp_path / "m.db", Fixed(), clock=clock)
    a = store.add("cos=0.1 A", importance=2, at=48 * HOUR)
    b = store.add("cos=0.5 B", importance=8, at=24 * HOUR)
    c = store.add("cos=0.9 C", importance=5, at=0.0)
    clock.t = 48 * HOUR
    hits = store.search("q", k=2)
    assert [h.memory.id for h in hits] == [b.id, c.id]
    assert [h.score for h in hits] == pytest.approx([1.969961, 1.5], abs=1e-5)
    assert hits[0].cosine == pytest.approx(0.5, abs=1e-6) and hits[0].recency == pytest.approx(0.469961, abs=1e-5)
    # Only the returned memories count as accessed.
    assert store.get(b.id).last_accessed == store.get(c.id).last_accessed == 48 * HOUR
    assert store.get(a.id).last_accessed == 48 * HOUR and store.get(c.id).created_at == 0.0
    assert [h.memory.id for h in store.search("q", 3, (0, 0, 1), touch=False)] == [c.id, b.id, a.id]


def test_next_day_recency_follows_access_not_creation(tmp_path, clock):
    store = MemoryStore(tmp_path / "m.db", Fixed(), clock=clock)
    old = store.add("cos=0.9 the well went dry", importance=5)
    clock.t += DAY
    new = store.add("cos=0.2 a bird sang", importance=5)
    recency_only = (1, 0, 0)
    assert store.search("q", 1, recency_only, touch=False)[0].memory.id == new.id
    clock.t += DAY  # the next day the em recalls the well...
    assert store.search("q", 1, (0, 0, 1))[0].memory.id == old.id
    clock.t += HOUR  # ...so an hour later the well is the fresher memory
    top = store.search("q", 2, recency_only, touch=False)
    assert [h.memory.id for h in top] == [old.id, new.id] and top[0].recency == 1.0


def test_search_by_kind_and_empty_store(store):
    assert store.search("anything", 5) == []
    store.add("Mara runs the tavern", kind="note")
    store.add("Mara runs the tavern", kind="observation")
    assert [h.memory.kind for h in store.search("tavern", 5, kind="note")] == ["note"]
    with pytest.raises(InputError, match="unknown memory kind"):
        store.search("tavern", kind="dream")


def test_sees_writes_from_another_connection(tmp_path, clock):
    path = tmp_path / "m.db"
    one, two = MemoryStore(path, HashEmbedder(), clock=clock), MemoryStore(path, HashEmbedder(), clock=clock)
    one.add("the tavern is warm")
    assert len(one.search("tavern", 5)) == 1  # index loaded
    added = two.add("the tavern burned down")
    two.forget(1)
    assert [h.memory.id for h in one.search("tavern", 5)] == [added.id]


def test_reopening_with_another_embedder_re_embeds(tmp_path, clock):
    path = tmp_path / "m.db"
    MemoryStore(path, HashEmbedder(256), clock=clock).add("the tavern is warm")
    store = MemoryStore(path, HashEmbedder(64), clock=clock)
    assert store.search("tavern", 1)[0].cosine > 0.3
    assert len(store.get(1).embedding) == 64
    assert np.allclose(store.get(1).embedding, HashEmbedder(64).embed(["the tavern is warm"])[0])


def test_approximate_search_keeps_recent_and_relevant(tmp_path, clock):
    words = "tavern river well bird forest market smith baker mill bridge".split()
    texts = [f"{words[i % 10]} {words[(i * 7) % 10]} note {i}" for i in range(300)]
    exact = MemoryStore(tmp_path / "a.db", HashEmbedder(), clock=clock, approx_threshold=None)
    approx = MemoryStore(tmp_path / "b.db", HashEmbedder(), clock=clock, approx_threshold=100, candidates=30)
    for i, t in enumerate(texts):
        exact.add(t, importance=5, at=i * HOUR)
        approx.add(t, importance=5, at=i * HOUR)
    clock.t = 300 * HOUR
    for q in ("tavern by the river", "the smith at the mill", "bird in the forest"):
        want = [h.memory.id for h in exact.search(q, 10, (0, 0, 1), touch=False)]
        got = [h.memory.id for h in approx.search(q, 10, (0, 0, 1), touch=False)]
        assert len(set(want) & set(got)) >= 9
    # recency alone must still find the newest memory, however irrelevant to the query
    assert approx.search("zzz qqq", 1, (1, 0, 0))[0].memory.id == 300


def test_export_import_round_trip(tmp_path, clock):
    src = MemoryStore(tmp_path / "a.db", Fixed(), clock=clock)
    a = src.add("cos=0.3 a", importance=3, at=10.0, meta={"where": "tavern"})
    b = src.add("cos=0.6 b", importance=6, at=20.0)
    src.add("cos=0.8 r", kind="reflection", importance=8, cites=[a.id, b.id], at=30.0)
    src.forget(a.id)  # leaves a gap in the ids
    data = json.loads(json.dumps(src.export(embeddings=True)))
    dst_embedder = Fixed()
    dst = MemoryStore(tmp_path / "b.db", dst_embedder, clock=clock)
    dst.import_(data)
    assert dst_embedder.texts == 0  # vectors came along: nothing embedded
    assert [m.to_dict() for m in dst.all()] == [m.to_dict() for m in src.all()]
    assert np.array_equal(dst.get(b.id).embedding, src.get(b.id).embedding)
    # Importing again collides on every id: new ids, citations follow them.
    again = dst.import_(src.export())
    assert dst_embedder.texts == 2  # without vectors they are embedded
    assert again[1].cites == (again[0].id,) and again[0].id not in (b.id, b.id + 1)


@pytest.mark.parametrize("records, match", [
    ([{"text": "ok"}, {"text": ""}], "record 2: a memory needs non-empty text"),
    ([{"text": "ok", "colour": "red"}], "unknown field"),
    ([{"text": "ok", "cites": [77]}], "cites \\[77\\]"),
    ([{"id": 1, "text": "a"}, {"id": 1, "text": "b"}], "appears twice"),
    ([{"text": "ok", "created_at": "yesterday"}], "created_at"),
    ({"text": "ok"}, "must be a list"),
])
def test_bad_imports_write_nothing(store, records, match):
    store.add("already here")
    with pytest.raises(InputError, match=match):
        store.import_(records)
    assert [m.text for m in store.all()] == ["already here"]


def test_not_a_database_is_a_config_error(tmp_path):
    path = memory_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(ConfigError, match="not a readable memory database"):
        MemoryStore(path, HashEmbedder())


def test_file_is_wal_with_one_row_per_memory(store):
    store.add("one")
    db = sqlite3.connect(store.path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("SELECT count(*), length(embedding) FROM memories").fetchone() == (1, 256 * 4)


@pytest.mark.slow
def test_minilm_recalls_by_meaning(tmp_path, clock):
    from simulacra.engine.embed import CachedEmbedder, get_embedder

    store = MemoryStore(tmp_path / "m.db", CachedEmbedder(get_embedder(), tmp_path / "cache"), clock=clock)
    for text in ["Mara pours ale for the travellers every evening.", "The old bridge creaks in the wind.",
                 "Klaus is studying the history of gentrification.", "It rained all morning."]:
        store.add(text, importance=5)
    hits = store.search("Who works at the tavern?", 2, (0, 0, 1))
    assert hits[0].memory.text.startswith("Mara") and hits[0].cosine > hits[1].cosine
    assert store.search("What is the weather like?", 1, (0, 0, 1))[0].memory.text == "It rained all morning."


def test_import_hand_written_records_without_ids(store, clock):
    existing = store.add("already here")
    got = store.import_([{"text": "a"}, {"text": "b", "kind": "note", "importance": 4},
                         {"id": 7, "text": "c"}, {"text": "d", "kind": "reflection", "cites": [7, existing.id]}])
    assert [m.text for m in got] == ["a", "b", "c", "d"] and len({m.id for m in got}) == 4
    assert got[2].id == 7 and got[3].cites == (existing.id, 7)
    assert got[0].created_at == clock.t and got[1].importance == 4
    assert store.search("c", 1, (0, 0, 1))[0].memory.id == 7  # imported memories are searchable
