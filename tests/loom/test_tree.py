"""The loom store: branching never rewrites, exports round-trip, bad imports change nothing,
generate stores one child per sample with the engine's logprobs."""
from __future__ import annotations

import json
import sqlite3

import pytest

from simulacra.engine.base import Engine
from simulacra.engine.fake import FakeBackend
from simulacra.engine.spec import load_engine
from simulacra.errors import EngineError, InputError
from simulacra.loom import Loom, NotFound, generate
from simulacra.types import Capabilities, Chunk, Sampling, TokenLogprob


@pytest.fixture
def loom(tmp_path):
    store = Loom(tmp_path / "loom.db")
    yield store
    store.close()


def snapshot(path) -> list[tuple]:
    """Every row of both tables, read by a separate connection."""
    with sqlite3.connect(path) as db:
        return db.execute("SELECT * FROM tree ORDER BY id").fetchall() + db.execute(
            "SELECT * FROM node ORDER BY id").fetchall()


def test_full_text_joins_the_path_from_the_root(loom):
    tree = loom.new_tree("Once upon a time")
    a = loom.add_child(tree.root_id, ", a fox")
    b = loom.add_child(a.id, " ran.")
    assert [n.id for n in loom.path_to(b.id)] == [tree.root_id, a.id, b.id]
    assert loom.full_text(b.id) == "Once upon a time, a fox ran."
    assert loom.full_text(tree.root_id) == "Once upon a time"
    assert loom.tree(tree.id).title == "Once upon a time"


def test_children_and_siblings_keep_creation_order(loom):
    root = loom.new_tree("x").root_id
    kids = [loom.add_child(root, t) for t in ("a", "b", "c")]
    assert [n.text for n in loom.children(root)] == ["a", "b", "c"]
    assert [n.id for n in loom.siblings(kids[1].id)] == [k.id for k in kids]
    assert [n.id for n in loom.siblings(root)] == [root]


def test_edit_adds_a_sibling_and_keeps_the_original(loom):
    root = loom.new_tree("The cat").root_id
    old = loom.add_child(root, " sat")
    below = loom.add_child(old.id, " down.")
    new = loom.edit(old.id, " slept")
    assert new.id != old.id and new.parent_id == root and new.meta["edited_from"] == old.id
    assert loom.node(old.id).text == " sat"  # never rewritten
    assert loom.full_text(below.id) == "The cat sat down."
    assert [n.text for n in loom.children(root)] == [" sat", " slept"]
    assert loom.children(new.id) == []  # the branch starts empty
    assert loom.edit(old.id, " sat") == loom.node(old.id)  # unchanged text: nothing new


def test_editing_a_root_adds_a_sibling_root(loom):
    tree = loom.new_tree("Draft one")
    new = loom.edit(tree.root_id, "Draft two")
    assert new.parent_id is None and new.tree_id == tree.id
    assert [n.text for n in loom.siblings(tree.root_id)] == ["Draft one", "Draft two"]
    assert loom.tree(tree.id).root_id == tree.root_id


def test_bookmark_toggles_and_sets(loom):
    root = loom.new_tree("x").root_id
    assert loom.bookmark(root).bookmarked is True
    assert loom.bookmark(root).bookmarked is False
    assert loom.bookmark(root, on=True).bookmarked is True
    assert loom.bookmark(root, on=True).bookmarked is True


def test_hide_drops_a_subtree_from_the_listing_but_keeps_it(loom):
    tree = loom.new_tree("x")
    a = loom.add_child(tree.root_id, "a")
    a2 = loom.add_child(a.id, "a2")
    b = loom.add_child(tree.root_id, "b")
    loom.hide(a.id)
    assert [n.id for n in loom.nodes(tree.id)] == [tree.root_id, b.id]
    assert {n.id for n in loom.nodes(tree.id, hidden=True)} == {tree.root_id, a.id, a2.id, b.id}
    assert loom.full_text(a2.id) == "xaa2"
    loom.hide(a.id, hidden=False)
    assert len(loom.nodes(tree.id)) == 4


def test_unknown_ids_raise_not_found(loom):
    with pytest.raises(NotFound):
        loom.node(999)
    with pytest.raises(NotFound):
        loom.tree(999)
    with pytest.raises(NotFound):
        loom.add_child(999, "x")
    with pytest.raises(NotFound):
        loom.full_text(999)
    with pytest.raises(InputError):
        loom.new_tree(None)  # type: ignore[arg-type]


def test_the_database_survives_reopening(tmp_path):
    path = tmp_path / "loom.db"
    with_store = Loom(path)
    tree = with_store.new_tree("kept")
    child = with_store.add_child(tree.root_id, " here", meta={"k": [1, 2]})
    with_store.close()
    again = Loom(path)
    assert again.full_text(child.id) == "kept here" and again.node(child.id).meta == {"k": [1, 2]}
    assert again._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    again.close()


def test_export_import_round_trip(loom):
    tree = loom.new_tree("Root", title="My tree")
    a = loom.add_child(tree.root_id, " a", author="model-x", meta={"tokens": [{"t": " a", "lp": -0.1, "top": []}]})
    b = loom.add_child(a.id, " b")
    loom.edit(b.id, " B")
    loom.bookmark(a.id)
    loom.hide(b.id)
    exported = loom.export(tree.id)
    copy = loom.import_tree(json.dumps(exported))
    assert copy.id != tree.id and copy.title == "My tree"
    again = loom.export(copy.id)
    strip = lambda e: [{k: v for k, v in n.items() if k not in ("id", "parent")} for n in e["nodes"]]  # noqa: E731
    assert strip(again) == strip(exported)
    # the shape of the tree survives, under new ids
    shape = lambda e: [(n["parent"] is None) or [m["text"] for m in e["nodes"] if m["id"] == n["parent"]][0]
                       for n in e["nodes"]]  # noqa: E731
    assert shape(again) == shape(exported)
    assert {n.id for n in loom.nodes(copy.id, hidden=True)}.isdisjoint(n["id"] for n in exported["nodes"])


@pytest.mark.parametrize("bad", [
    "{not json",
    b"\xff\xfe",
    "[]",
    json.dumps({"format": "other", "version": 1, "nodes": [{"id": 1, "parent": None, "text": "x"}]}),
    json.dumps({"format": "simulacra-loom", "version": 99, "nodes": [{"id": 1, "parent": None, "text": "x"}]}),
    json.dumps({"format": "simulacra-loom", "version": 1, "nodes": []}),
    json.dumps({"format": "simulacra-loom", "version": 1, "nodes": [{"id": 1, "parent": None, "text": 5}]}),
    json.dumps({"format": "simulacra-loom", "version": 1,  # a child before its parent
                "nodes": [{"id": 1, "parent": None, "text": "x"}, {"id": 2, "parent": 3, "text": "y"},
                          {"id": 3, "parent": 1, "text": "z"}]}),
    json.dumps({"format": "simulacra-loom", "version": 1,  # duplicate ids
                "nodes": [{"id": 1, "parent": None, "text": "x"}, {"id": 1, "parent": 1, "text": "y"}]}),
    json.dumps({"format": "simulacra-loom", "version": 1,  # good nodes, then a bad one last
                "nodes": [{"id": 1, "parent": None, "text": "x"}, {"id": 2, "parent": 1, "text": "y"},
                          {"id": 3, "parent": 2, "text": "z", "meta": "nope"}]}),
])
def test_malformed_import_raises_and_leaves_the_database_unchanged(loom, bad):
    loom.new_tree("existing")
    before = snapshot(loom.path)
    with pytest.raises(InputError):
        loom.import_tree(bad)
    assert snapshot(loom.path) == before


def test_an_import_failing_mid_write_is_rolled_back(loom, monkeypatch):
    loom.new_tree("existing")
    before = snapshot(loom.path)
    data = {"format": "simulacra-loom", "version": 1,
            "nodes": [{"id": 1, "parent": None, "text": "x"}, {"id": 2, "parent": 1, "text": "y"}]}
    real, calls = loom._insert, []

    def failing(*args, **kwargs):
        calls.append(args)
        if len(calls) == 2:
            raise sqlite3.OperationalError("disk full")
        return real(*args, **kwargs)

    monkeypatch.setattr(loom, "_insert", failing)
    with pytest.raises(sqlite3.OperationalError):
        loom.import_tree(data)
    assert snapshot(loom.path) == before


async def test_generate_stores_n_children_continuing_the_full_text(loom):
    backend = FakeBackend(lambda prompt: f" after {len(prompt)} chars")
    engine = Engine(backend, name="fake-model")
    tree = loom.new_tree("Hello")
    mid = loom.add_child(tree.root_id, " world")
    kids = await generate(loom, mid.id, engine, n=3, sampling=Sampling(max_tokens=10))
    assert len(kids) == 3 and len(loom.children(mid.id)) == 3
    assert backend.prompts == ["Hello world"] * 3
    assert all(k.text == " after 11 chars" and k.author == "fake-model" and k.parent_id == mid.id for k in kids)
    assert all(k.meta["finish_reason"] == "stop" and "tokens" not in k.meta for k in kids)


async def test_generate_honours_max_tokens(loom):
    engine = load_engine("fake:one two three four five")
    root = loom.new_tree("Count:").root_id
    kids = await generate(loom, root, engine, n=2, sampling=Sampling(max_tokens=2))
    assert [k.text for k in kids] == ["one two"] * 2
    assert {k.meta["finish_reason"] for k in kids} == {"length"}


class LogprobBackend(FakeBackend):
    """Each piece carries a logprob and alternatives, like a white-box engine."""

    def __init__(self, reply: str):
        super().__init__([reply])
        self.capabilities = Capabilities(can_logprobs=True)
        self.asked: list[int | None] = []

    async def complete(self, prompt, sampling):
        self.asked.append(sampling.logprobs)
        async for chunk in super().complete(prompt, sampling):
            if chunk.text:
                lp = -0.25 * len(chunk.text.strip())
                chunk = Chunk(chunk.text, chunk.tokens, (TokenLogprob(chunk.text, lp, ((chunk.text, lp), ("z", -3.0))),))
            yield chunk


async def test_generate_keeps_token_logprobs_aligned_with_the_text(loom):
    backend = LogprobBackend("red green blue")
    root = loom.new_tree("Colours:").root_id
    (kid,) = await generate(loom, root, Engine(backend), n=1)
    assert backend.asked == [5]
    tokens = kid.meta["tokens"]
    assert "".join(t["t"] for t in tokens) == kid.text == "red green blue"
    assert [t["lp"] for t in tokens] == [-0.75, -1.25, -1.0]
    assert tokens[0]["top"] == [["red", -0.75], ["z", -3.0]]


async def test_a_failing_engine_stores_nothing(loom):
    class Broken(FakeBackend):
        async def _stream(self, reply, sampling):
            yield Chunk("half", tokens=(0,))
            raise EngineError("the model fell over")

    root = loom.new_tree("x").root_id
    with pytest.raises(EngineError):
        await generate(loom, root, Engine(Broken()), n=3)
    assert loom.children(root) == []
