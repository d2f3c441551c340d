"""The loom: trees of text in SQLite, where every node continues the text of its ancestors.

A node holds only its own continuation; the text *at* a node is the concatenation of its path
from a root. History is never rewritten: editing a node adds a sibling holding the new text,
hiding a node only flags it. A tree may have several roots (an edited root is a sibling root).

    loom = Loom()                               # $SIMULACRA_HOME/loom.db
    tree = loom.new_tree("Once upon a time")
    kids = await generate(loom, tree.root_id, engine, n=3)
    loom.full_text(kids[0].id)                  # "Once upon a time, there was..."
"""
from __future__ import annotations

import dataclasses
import json
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from simulacra.errors import InputError
from simulacra.storage import home, open_sqlite
from simulacra.types import Completer, Sampling

FORMAT, VERSION = "simulacra-loom", 1
TOP_LOGPROBS = 5  # alternatives kept per token, shown on hover in the web UI

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tree (id INTEGER PRIMARY KEY, title TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS node (
    id INTEGER PRIMARY KEY,
    tree_id INTEGER NOT NULL REFERENCES tree(id),
    parent_id INTEGER REFERENCES node(id),
    text TEXT NOT NULL,
    author TEXT NOT NULL,
    created REAL NOT NULL,
    bookmarked INTEGER NOT NULL DEFAULT 0,
    hidden INTEGER NOT NULL DEFAULT 0,
    meta TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS node_parent ON node(parent_id);
CREATE INDEX IF NOT EXISTS node_tree ON node(tree_id);
"""


class NotFound(InputError):
    """A tree or node id that the loom does not have."""

    status = 404


@dataclass(frozen=True)
class Tree:
    id: int
    title: str
    created: float
    root_id: int

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Node:
    id: int
    tree_id: int
    parent_id: int | None
    text: str
    author: str  # "human" or the model that wrote it
    created: float
    bookmarked: bool = False
    hidden: bool = False
    meta: Mapping[str, Any] = field(default_factory=dict)  # edited_from, finish_reason, tokens (logprobs)

    def as_dict(self) -> dict:
        return {**dataclasses.asdict(self), "meta": dict(self.meta)}


def default_path() -> Path:
    return home() / "loom.db"


class Loom:
    """The store. Safe to share between threads (one connection behind a lock)."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path else default_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = open_sqlite(self.path, _SCHEMA, "loom")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # --- reading -------------------------------------------------------------------------------

    def trees(self) -> list[Tree]:
        rows = self._all("SELECT t.id, t.title, t.created, min(n.id) FROM tree t JOIN node n "
                         "ON n.tree_id = t.id AND n.parent_id IS NULL GROUP BY t.id ORDER BY t.id DESC")
        return [Tree(*row) for row in rows]

    def tree(self, tree_id: int) -> Tree:
        rows = self._all("SELECT t.id, t.title, t.created, min(n.id) FROM tree t JOIN node n "
                         "ON n.tree_id = t.id AND n.parent_id IS NULL WHERE t.id = ? GROUP BY t.id", tree_id)
        if not rows:
            raise NotFound(f"no loom tree {tree_id}; list them with GET /api/trees")
        return Tree(*rows[0])

    def nodes(self, tree_id: int, hidden: bool = False) -> list[Node]:
        """Every node of a tree, parents before children. Hidden subtrees are left out unless asked."""
        self.tree(tree_id)
        found = self._nodes("WHERE tree_id = ? ORDER BY id", tree_id)
        if hidden:
            return found
        shown, visible = {None}, []
        for n in found:  # parents come first, so a hidden node's whole subtree drops out
            if not n.hidden and n.parent_id in shown:
                shown.add(n.id)
                visible.append(n)
        return visible

    def node(self, node_id: int) -> Node:
        found = self._nodes("WHERE id = ?", node_id)
        if not found:
            raise NotFound(f"no loom node {node_id}")
        return found[0]

    def children(self, node_id: int, hidden: bool = False) -> list[Node]:
        self.node(node_id)
        return [n for n in self._nodes("WHERE parent_id = ? ORDER BY id", node_id) if hidden or not n.hidden]

    def siblings(self, node_id: int) -> list[Node]:
        """The node and its siblings (other roots, for a root), in order of creation."""
        node = self.node(node_id)
        if node.parent_id is None:
            same = self._nodes("WHERE tree_id = ? AND parent_id IS NULL ORDER BY id", node.tree_id)
        else:
            same = self._nodes("WHERE parent_id = ? ORDER BY id", node.parent_id)
        return [n for n in same if not n.hidden or n.id == node_id]

    def path_to(self, node_id: int) -> list[Node]:
        """Root first, ending at the node."""
        ids = self._all("WITH RECURSIVE up(id, parent_id, depth) AS (SELECT id, parent_id, 0 FROM node WHERE id = ? "
                        "UNION ALL SELECT n.id, n.parent_id, up.depth + 1 FROM node n JOIN up ON n.id = up.parent_id) "
                        "SELECT id FROM up ORDER BY depth DESC", node_id)
        if not ids:
            raise NotFound(f"no loom node {node_id}")
        by_id = {n.id: n for n in self._nodes(f"WHERE id IN ({','.join('?' * len(ids))})", *(i for i, in ids))}
        return [by_id[i] for i, in ids]

    def full_text(self, node_id: int) -> str:
        return "".join(n.text for n in self.path_to(node_id))

    # --- writing (never rewrites a node's text) ------------------------------------------------

    def new_tree(self, root_text: str, title: str | None = None, author: str = "human") -> Tree:
        _check_text(root_text)
        with self._lock, self._transaction():
            now = time.time()
            tree_id = self._db.execute("INSERT INTO tree (title, created) VALUES (?, ?)",
                                       (title or _title(root_text), now)).lastrowid
            self._insert(tree_id, None, root_text, author, {}, now)
        return self.tree(tree_id)

    def add_child(self, parent_id: int, text: str, author: str = "human", meta: Mapping | None = None) -> Node:
        return self.add_children(parent_id, [(text, author, meta or {})])[0]

    def add_children(self, parent_id: int | None, children: list[tuple[str, str, Mapping]],
                     tree_id: int | None = None) -> list[Node]:
        """Several children at once (all or none); ``parent_id`` None adds roots to ``tree_id``."""
        for text, _, _ in children:
            _check_text(text)
        with self._lock, self._transaction():
            if parent_id is not None:
                tree_id = self.node(parent_id).tree_id
            elif tree_id is None or not self._all("SELECT 1 FROM tree WHERE id = ?", tree_id):
                raise NotFound(f"no loom tree {tree_id}")
            ids = [self._insert(tree_id, parent_id, text, author, meta, time.time()) for text, author, meta in children]
        return [self.node(i) for i in ids]

    def edit(self, node_id: int, new_text: str, author: str = "human") -> Node:
        """A new sibling holding ``new_text``; the node itself is kept. Unchanged text: the node."""
        node = self.node(node_id)
        if new_text == node.text:
            return node
        meta = {"edited_from": node.id}
        return self.add_children(node.parent_id, [(new_text, author, meta)], tree_id=node.tree_id)[0]

    def bookmark(self, node_id: int, on: bool | None = None) -> Node:
        """Set the bookmark, or toggle it when ``on`` is None."""
        with self._lock:
            node = self.node(node_id)
            self._db.execute("UPDATE node SET bookmarked = ? WHERE id = ?",
                             (int(not node.bookmarked if on is None else on), node_id))
        return self.node(node_id)

    def hide(self, node_id: int, hidden: bool = True) -> Node:
        """Soft-delete a node and so its subtree (kept in the database and in exports)."""
        with self._lock:
            self.node(node_id)
            self._db.execute("UPDATE node SET hidden = ? WHERE id = ?", (int(hidden), node_id))
        return self.node(node_id)

    # --- exchange ------------------------------------------------------------------------------

    def export(self, tree_id: int) -> dict:
        tree = self.tree(tree_id)
        nodes = [{"id": n.id, "parent": n.parent_id, "text": n.text, "author": n.author, "created": n.created,
                  "bookmarked": n.bookmarked, "hidden": n.hidden, "meta": dict(n.meta)}
                 for n in self.nodes(tree_id, hidden=True)]
        return {"format": FORMAT, "version": VERSION, "title": tree.title, "created": tree.created, "nodes": nodes}

    def import_tree(self, data: str | bytes | Mapping) -> Tree:
        """A new tree from ``export``'s JSON. Checked whole before anything is written, then
        written in one transaction, so a bad file leaves the database as it was."""
        title, created, nodes = _validate(data)
        with self._lock, self._transaction():
            tree_id = self._db.execute("INSERT INTO tree (title, created) VALUES (?, ?)", (title, created)).lastrowid
            new_ids: dict[Any, int] = {}
            for n in nodes:
                new_ids[n["id"]] = self._insert(tree_id, new_ids.get(n["parent"]), n["text"], n["author"],
                                                n["meta"], n["created"], n["bookmarked"], n["hidden"])
        return self.tree(tree_id)

    # --- plumbing ------------------------------------------------------------------------------

    def _insert(self, tree_id, parent_id, text, author, meta, created, bookmarked=False, hidden=False) -> int:
        return self._db.execute(
            "INSERT INTO node (tree_id, parent_id, text, author, created, bookmarked, hidden, meta) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (tree_id, parent_id, text, author, created, int(bookmarked), int(hidden), json.dumps(dict(meta)))).lastrowid

    def _nodes(self, where: str, *args) -> list[Node]:
        rows = self._all(f"SELECT id, tree_id, parent_id, text, author, created, bookmarked, hidden, meta "
                         f"FROM node {where}", *args)
        return [Node(*row[:6], bool(row[6]), bool(row[7]), json.loads(row[8])) for row in rows]

    def _all(self, sql: str, *args) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    @contextmanager
    def _transaction(self):
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")


async def generate(loom: Loom, node_id: int, engine: Completer, n: int = 3, sampling: Sampling | None = None,
                   author: str | None = None) -> list[Node]:
    """``n`` children of a node, each a continuation of the text at it. Token logprobs are kept
    (``meta["tokens"]``: [{"t": text, "lp": logprob, "top": [[alt, logprob], ...]}], whose texts
    join to the node's text) when the engine gives them. Nothing is stored if generation fails."""
    prompt = loom.full_text(node_id)
    sampling = dataclasses.replace(sampling or Sampling(), n=n)
    if engine.capabilities.can_logprobs and sampling.logprobs is None:
        sampling = dataclasses.replace(sampling, logprobs=TOP_LOGPROBS)
    texts: list[list[str]] = [[] for _ in range(n)]
    tokens: list[list[dict]] = [[] for _ in range(n)]
    finish: list[str | None] = [None] * n
    async for chunk in engine.complete(prompt, sampling):
        if not 0 <= chunk.index < n:
            continue
        texts[chunk.index].append(chunk.text)
        if chunk.text:
            tokens[chunk.index].append(_token(chunk))
        finish[chunk.index] = chunk.finish_reason or finish[chunk.index]
    name = author or getattr(engine, "name", None) or type(engine).__name__
    children = []
    for i in range(n):
        meta: dict[str, Any] = {"finish_reason": finish[i]}
        if any(t["lp"] is not None for t in tokens[i]):
            meta["tokens"] = tokens[i]
        children.append(("".join(texts[i]), name, meta))
    return loom.add_children(node_id, children)


def _token(chunk) -> dict:
    """One streamed piece: its text, the sum of its tokens' logprobs, the first token's alternatives."""
    if not chunk.logprobs:
        return {"t": chunk.text, "lp": None, "top": []}
    first = chunk.logprobs[0]
    return {"t": chunk.text, "lp": sum(lp.logprob for lp in chunk.logprobs), "top": [list(t) for t in first.top]}


def _check_text(text) -> None:
    if not isinstance(text, str):
        raise InputError(f"a loom node's text must be a string, not {type(text).__name__}")


def _title(text: str) -> str:
    line = " ".join(text.split())
    return (line[:57] + "...") if len(line) > 60 else (line or "untitled")


def _validate(data: str | bytes | Mapping) -> tuple[str, float, list[dict]]:
    """export()'s shape, checked field by field; parents must come before their children."""
    if isinstance(data, (str, bytes)):
        try:
            data = json.loads(data)
        except (ValueError, UnicodeDecodeError) as e:
            raise InputError(f"the loom file is not valid JSON ({e}); export a tree to see the format") from None
    if not isinstance(data, Mapping) or data.get("format") != FORMAT:
        raise InputError(f'not a loom export: expected a JSON object with "format": "{FORMAT}"')
    if data.get("version") != VERSION:
        raise InputError(f"loom export version {data.get('version')!r} is not supported; this simulacra reads {VERSION}")
    nodes = data.get("nodes")
    if not isinstance(nodes, list) or not nodes:
        raise InputError('a loom export needs a non-empty "nodes" list')
    title = data.get("title") or "imported"
    if not isinstance(title, str) or not _is_number(data.get("created", 0)):
        raise InputError('a loom export\'s "title" must be a string and "created" a number')
    seen: set = set()
    clean = []
    for i, n in enumerate(nodes):
        where = f"nodes[{i}]"
        if not isinstance(n, Mapping):
            raise InputError(f"{where} must be an object")
        nid, parent = n.get("id"), n.get("parent")
        if not isinstance(nid, (int, str)) or isinstance(nid, bool) or nid in seen:
            raise InputError(f"{where}.id must be a unique integer or string, not {nid!r}")
        if parent is not None and parent not in seen:
            raise InputError(f"{where}.parent {parent!r} is not the id of an earlier node; list parents first")
        if i == 0 and parent is not None:
            raise InputError("nodes[0] must be a root (parent null)")
        if not isinstance(n.get("text"), str) or not isinstance(n.get("author", "human"), str):
            raise InputError(f"{where}.text and .author must be strings")
        if not isinstance(n.get("meta", {}), Mapping) or not _is_number(n.get("created", 0)):
            raise InputError(f"{where}.meta must be an object and .created a number")
        seen.add(nid)
        clean.append({"id": nid, "parent": parent, "text": n["text"], "author": n.get("author", "human"),
                      "created": float(n.get("created") or time.time()), "meta": dict(n.get("meta", {})),
                      "bookmarked": bool(n.get("bookmarked")), "hidden": bool(n.get("hidden"))})
    return title, float(data.get("created") or time.time()), clean


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
