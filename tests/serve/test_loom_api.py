"""The loom's JSON API, through the real app (create_app) with scripted engines."""
from __future__ import annotations

import json

import pytest

from simulacra.engine.base import Engine
from simulacra.engine.fake import FakeBackend
from simulacra.engine.spec import load_engine
from simulacra.loom import Loom
from simulacra.types import Capabilities, Chunk, TokenLogprob

KEY = "loom-key"
MODEL = "fake:and then the wind rose."


class LogprobBackend(FakeBackend):
    def __init__(self):
        super().__init__([" alpha beta"])
        self.capabilities = Capabilities(can_logprobs=True)
        self.samplings = []

    async def complete(self, prompt, sampling):
        self.samplings.append(sampling)
        async for chunk in super().complete(prompt, sampling):
            if chunk.text:
                chunk = Chunk(chunk.text, chunk.tokens, (TokenLogprob(chunk.text, -0.5, ((chunk.text, -0.5),)),))
            yield chunk


@pytest.fixture
def setup(tmp_path):
    from fastapi.testclient import TestClient

    from simulacra.serve import create_app

    em = tmp_path / "ems" / "mara"
    em.mkdir(parents=True)
    (em / "config.yaml").write_text('continuation_model: "fake:the em speaks"\ntemperature: 0.3\n'
                                    'stop_sequences: ["\\n"]\n')
    engines: dict = {}

    def loader(spec):
        engines[spec] = Engine(LogprobBackend(), name=spec) if spec == "logprobs" else load_engine(spec)
        return engines[spec]

    app = create_app([em], [MODEL, "logprobs"], api_keys=[KEY], loader=loader)
    app.state.loom = Loom(tmp_path / "loom.db")
    with TestClient(app, headers={"Authorization": f"Bearer {KEY}"}) as client:
        yield client, app.state.loom, engines
    app.state.loom.close()


def test_create_get_and_list_trees(setup):
    client, loom, _ = setup
    r = client.post("/api/trees", json={"text": "It was a dark night", "title": "Night"})
    assert r.status_code == 201
    tree, nodes = r.json()["tree"], r.json()["nodes"]
    assert tree["title"] == "Night" and nodes[0]["id"] == tree["root_id"] and nodes[0]["text"] == "It was a dark night"
    got = client.get(f"/api/trees/{tree['id']}").json()
    assert got == r.json()
    assert [t["id"] for t in client.get("/api/trees").json()["trees"]] == [tree["id"]]


def test_generate_n_children_with_a_model(setup):
    client, loom, engines = setup
    root = client.post("/api/trees", json={"text": "Start."}).json()["tree"]["root_id"]
    r = client.post(f"/api/nodes/{root}/generate", json={"model": MODEL, "n": 3, "max_tokens": 3})
    assert r.status_code == 200, r.text
    kids = r.json()["nodes"]
    assert len(kids) == 3 and {k["parent_id"] for k in kids} == {root}
    assert {k["text"] for k in kids} == {"and then the"}  # max_tokens=3 of the scripted reply
    assert {k["author"] for k in kids} == {MODEL}
    assert engines[MODEL].backend.prompts == ["Start."] * 3
    assert [n.id for n in loom.children(root)] == [k["id"] for k in kids]


def test_generate_with_an_em_uses_its_engine_and_sampling_but_not_its_stops(setup):
    client, loom, engines = setup
    root = client.post("/api/trees", json={"text": "Line one\n"}).json()["tree"]["root_id"]
    r = client.post(f"/api/nodes/{root}/generate", json={"model": "mara", "n": 1})
    assert r.status_code == 200, r.text
    assert r.json()["nodes"][0]["text"] == "the em speaks"
    assert engines["fake:the em speaks"].backend.prompts == ["Line one\n"]  # the raw text, no chat prompt


def test_generate_keeps_logprobs_and_passes_sampling(setup):
    client, loom, engines = setup
    root = client.post("/api/trees", json={"text": "Greek:"}).json()["tree"]["root_id"]
    r = client.post(f"/api/nodes/{root}/generate",
                    json={"model": "logprobs", "n": 2, "max_tokens": 7, "temperature": 0.4, "seed": 11})
    kids = r.json()["nodes"]
    assert [t["lp"] for t in kids[0]["meta"]["tokens"]] == [-0.5, -0.5]
    s = engines["logprobs"].backend.samplings
    assert [x.seed for x in s] == [11, 12] and {(x.temperature, x.max_tokens) for x in s} == {(0.4, 7)}


def test_get_node_gives_the_full_text(setup):
    client, loom, _ = setup
    root = client.post("/api/trees", json={"text": "A"}).json()["tree"]["root_id"]
    child = client.post(f"/api/nodes/{root}/children", json={"text": "B"}).json()["node"]
    assert client.get(f"/api/nodes/{child['id']}").json() == {"node": child, "full_text": "AB"}


def test_edit_branches_and_bookmark_toggles(setup):
    client, loom, _ = setup
    root = client.post("/api/trees", json={"text": "A"}).json()["tree"]["root_id"]
    child = client.post(f"/api/nodes/{root}/children", json={"text": "B"}).json()["node"]
    new = client.post(f"/api/nodes/{child['id']}/edit", json={"text": "C"}).json()["node"]
    assert new["id"] != child["id"] and new["parent_id"] == root and new["meta"]["edited_from"] == child["id"]
    assert loom.node(child["id"]).text == "B"
    assert client.post(f"/api/nodes/{new['id']}/bookmark").json()["node"]["bookmarked"] is True
    assert client.post(f"/api/nodes/{new['id']}/bookmark").json()["node"]["bookmarked"] is False
    assert client.post(f"/api/nodes/{new['id']}/bookmark", json={"on": True}).json()["node"]["bookmarked"] is True
    client.post(f"/api/nodes/{child['id']}/hide")
    tree_id = new["tree_id"]
    assert [n["id"] for n in client.get(f"/api/trees/{tree_id}").json()["nodes"]] == [root, new["id"]]
    assert len(client.get(f"/api/trees/{tree_id}", params={"hidden": True}).json()["nodes"]) == 3


def test_export_import_round_trip(setup):
    client, loom, _ = setup
    root = client.post("/api/trees", json={"text": "A", "title": "T"}).json()["tree"]["root_id"]
    client.post(f"/api/nodes/{root}/children", json={"text": "B"})
    tree_id = loom.node(root).tree_id
    r = client.get(f"/api/trees/{tree_id}/export")
    assert "attachment" in r.headers["content-disposition"]
    imported = client.post("/api/trees/import", content=r.content)
    assert imported.status_code == 201
    assert imported.json()["tree"]["title"] == "T" and imported.json()["tree"]["id"] != tree_id
    assert [n["text"] for n in imported.json()["nodes"]] == ["A", "B"]


@pytest.mark.parametrize("body", [b"{oops", b'{"format": "simulacra-loom", "version": 1, "nodes": []}', b"\xff"])
def test_a_bad_import_is_400_and_writes_nothing(setup, body):
    client, loom, _ = setup
    client.post("/api/trees", json={"text": "A"})
    r = client.post("/api/trees/import", content=body)
    assert r.status_code == 400 and r.json()["error"]["message"]
    assert len(loom.trees()) == 1


@pytest.mark.parametrize("method, path, body, status", [
    ("get", "/api/trees/999", None, 404),
    ("get", "/api/nodes/999", None, 404),
    ("get", "/api/trees/abc", None, 400),
    ("post", "/api/nodes/999/edit", {"text": "x"}, 404),
    ("post", "/api/nodes/999/bookmark", None, 404),
    ("post", "/api/nodes/999/generate", {"model": MODEL}, 404),
    ("post", "/api/trees", {"text": 5}, 400),
    ("post", "/api/trees", {}, 400),
    ("post", "/api/trees", {"text": "x", "colour": "red"}, 400),
])
def test_bad_ids_and_input_are_4xx(setup, method, path, body, status):
    client, _, _ = setup
    r = getattr(client, method)(path, **({"json": body} if body is not None else {}))
    assert r.status_code == status, r.text
    assert r.json()["error"]["message"]


def test_bad_generate_requests(setup):
    client, loom, _ = setup
    root = client.post("/api/trees", json={"text": "A"}).json()["tree"]["root_id"]
    assert client.post(f"/api/nodes/{root}/generate", json={"model": "nope"}).status_code == 404
    assert client.post(f"/api/nodes/{root}/generate", json={"model": MODEL, "n": 0}).status_code == 400
    assert client.post(f"/api/nodes/{root}/generate", json={"model": MODEL, "temperature": 9}).status_code == 400
    assert loom.children(root) == []


def test_the_api_needs_the_key_but_the_page_does_not(setup):
    client, _, _ = setup
    assert client.get("/api/trees", headers={"Authorization": ""}).status_code == 401
    assert client.get("/api/trees", headers={"Authorization": "Bearer wrong"}).status_code == 401
    page = client.get("/", headers={"Authorization": ""})
    assert page.status_code == 200 and "<script" in page.text
    for asset in ("app.js", "style.css"):
        assert client.get(f"/{asset}", headers={"Authorization": ""}).status_code == 200


def test_the_page_loads_nothing_from_the_internet(setup):
    client, _, _ = setup
    for asset in ("", "app.js", "style.css"):
        text = client.get(f"/{asset}").text
        assert "http://" not in text and "https://" not in text, asset
