"""Bad requests get the right status and OpenAI's error body, and the server keeps serving:
keys, unknown models, malformed bodies, oversized bodies, and a burst past the queue."""
from __future__ import annotations

import asyncio
import time

import httpx
import openai
import pytest


def assert_error(response: httpx.Response, status: int, *words: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    for word in words:
        assert word in body["error"]["message"]
    return body["error"]


@pytest.fixture
def post(base_url, kit):
    def send(path: str, key: str | None = kit.KEY, **kw) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.post(base_url + path, headers={**headers, **kw.pop("headers", {})}, timeout=20, **kw)

    return send


def still_serving(base_url, kit) -> None:
    with openai.OpenAI(base_url=base_url, api_key=kit.KEY, max_retries=0) as c:
        assert c.chat.completions.create(model="mara", messages=[{"role": "user", "content": "hi"}]) \
            .choices[0].message.content == kit.EM_REPLY


def test_keys(base_url, kit, post):
    chat = {"model": "mara", "messages": [{"role": "user", "content": "hi"}]}
    err = assert_error(post("/chat/completions", key=None, json=chat), 401, "no API key")
    assert err["type"] == "authentication_error" and err["code"] == "invalid_api_key"
    assert_error(post("/chat/completions", key="nope", json=chat), 401, "wrong API key")
    assert_error(httpx.get(base_url + "/models"), 401)
    # the key is checked before the body is even parsed
    assert_error(post("/chat/completions", key=None, content=b"{garbage"), 401)
    with openai.OpenAI(base_url=base_url, api_key="wrong", max_retries=0) as c:
        with pytest.raises(openai.AuthenticationError):
            c.models.list()
    still_serving(base_url, kit)


def test_unknown_model_lists_close_matches(post, base_url, kit):
    err = assert_error(post("/chat/completions", json={"model": "marra", "messages": [{"role": "user", "content": "x"}]}),
                       404, "marra", "did you mean", "mara")
    assert err["code"] == "model_not_found" and err["param"] == "model"
    # a spec outside the served list is not loaded (no --any-model): specs name files and URLs
    assert_error(post("/completions", json={"model": "openai:x@http://169.254.169.254/v1", "prompt": "x"}), 404)
    assert_error(httpx.get(base_url + "/models/gpt-4", headers={"Authorization": f"Bearer {kit.KEY}"}), 404, "gpt-4")


@pytest.mark.parametrize("body, param, words", [
    (b'{"model": "mara", "messages": [', None, ["not valid JSON"]),
    (b'{"model": "mara", "messages": "hi"}', "messages", ["valid list"]),
    (b'{"model": "mara", "messages": [{"role": "user", "content": "x"}], "temperature": "hot"}', "temperature", []),
    (b'{"model": "mara", "messages": [{"role": "user", "content": "x"}], "max_tokens": -1}', "max_tokens", ["1"]),
    (b'{"model": "mara", "messages": []}', "messages", ["at least 1"]),
    (b'{"model": "mara", "messages": [{"role": "wizard", "content": "x"}]}', "messages.0.role", []),
    (b'{"model": 7, "messages": [{"role": "user", "content": "x"}]}', "model", []),
    (b'{"messages": [{"role": "user", "content": "x"}]}', "model", ["required"]),
    (b'{"model": "mara", "messages": [{"role": "user", "content": "x"}], "n": 1000}', "n", []),
    (b'{"model": "mara", "messages": [{"role": "user", "content": "x"}], "stop": [""]}', "stop.0", []),
    (b'[1, 2]', None, []),
])
def test_malformed_bodies_are_400s_naming_the_field(post, body, param, words):
    err = assert_error(post("/chat/completions", content=body, headers={"Content-Type": "application/json"}),
                       400, *words)
    assert err["param"] == param


def test_malformed_through_the_openai_client(base_url, kit):
    with openai.OpenAI(base_url=base_url, api_key=kit.KEY, max_retries=0) as c:
        with pytest.raises(openai.BadRequestError) as bad:
            c.completions.create(model=kit.FAKE, prompt="x", max_tokens=-1)
        assert bad.value.body["param"] == "max_tokens"
        with pytest.raises(openai.BadRequestError):
            c.chat.completions.create(model="mara", messages=[])


def test_a_5mb_body_is_refused_with_413(base_url, kit, post):
    with openai.OpenAI(base_url=base_url, api_key=kit.KEY, max_retries=0) as c:
        with pytest.raises(openai.APIStatusError) as big:
            c.chat.completions.create(model="mara", messages=[{"role": "user", "content": "x" * 5_000_000}])
    assert big.value.status_code == 413 and "over 1000000 bytes" in big.value.body["message"]

    def chunked():  # no Content-Length: counted as it arrives
        for _ in range(50):
            yield b" " * 100_000

    assert_error(post("/chat/completions", content=chunked()), 413, "over 1000000 bytes")
    still_serving(base_url, kit)


def test_unknown_routes_and_methods_keep_the_error_shape(base_url, kit):
    headers = {"Authorization": f"Bearer {kit.KEY}"}
    assert_error(httpx.get(base_url + "/nothing", headers=headers), 404, "/v1/nothing")
    assert_error(httpx.delete(base_url + "/chat/completions", headers=headers), 405)


async def test_a_burst_past_the_queue_gets_429s_and_the_rest_succeed(tmp_path, kit, engines):
    """50 concurrent requests, one slot, 3 may wait per key: the overflow gets 429 at once, every
    accepted request completes correctly, and the server serves normally afterwards."""
    from simulacra.serve import create_app

    app = create_app([], ["slow"], api_keys=[kit.KEY], parallel=1, queue_depth=3, loader=kit.make_loader({}))
    with kit.running(app) as url:
        async with openai.AsyncOpenAI(base_url=url, api_key=kit.KEY, max_retries=0, timeout=60) as c:
            async def one(i: int):
                try:
                    r = await c.completions.create(model="slow", prompt=f"request {i}")
                    return 200, r.choices[0].text
                except openai.RateLimitError as e:
                    return e.status_code, e.body

            results = await asyncio.gather(*(one(i) for i in range(50)))
            statuses = [s for s, _ in results]
            assert set(statuses) == {200, 429}
            assert statuses.count(200) >= 4  # one running + three waiting, at least
            assert statuses.count(429) >= 10  # each accepted one takes ~0.2 s; the burst arrives faster
            assert all(text == "one two three four five six seven eight" for s, text in results if s == 200)
            refused = next(body for s, body in results if s == 429)
            assert refused["code"] == "rate_limit_exceeded" and refused["type"] == "rate_limit_error"
            again = await c.completions.create(model="slow", prompt="after")
            assert again.choices[0].text.startswith("one two")
        assert app.state.models.queue("slow").running == 0


async def test_keys_take_turns_under_load(kit):
    """A flood from one key does not starve another key's single request."""
    from simulacra.serve import create_app

    order: list[str] = []
    app = create_app([], ["slow"], api_keys=["flood", "polite"], parallel=1, queue_depth=20,
                     loader=kit.make_loader({}))
    with kit.running(app) as url:
        async def one(key: str, label: str, delay: float = 0):
            await asyncio.sleep(delay)
            async with openai.AsyncOpenAI(base_url=url, api_key=key, max_retries=0, timeout=60) as c:
                await c.completions.create(model="slow", prompt="x")
                order.append(label)

        await asyncio.gather(*(one("flood", f"flood{i}") for i in range(8)), one("polite", "polite", delay=0.1))
    assert "polite" in order[:4], order  # first come, first served would put it last


def test_a_client_that_hangs_up_frees_its_slot_and_stops_the_engine(kit):
    from simulacra.serve import create_app

    engines: dict = {}
    app = create_app([], ["crawl"], parallel=1, loader=kit.make_loader(engines))
    with kit.running(app) as url:
        with httpx.stream("POST", url + "/completions", json={"model": "crawl", "prompt": "x", "stream": True}) as r:
            lines = r.iter_lines()
            assert [next(lines) for _ in range(4)][-2].startswith("data: ")  # two events in: hang up
        backend = engines["crawl"].backend
        deadline = time.monotonic() + 5
        while app.state.models.queue("crawl").running and time.monotonic() < deadline:
            time.sleep(0.05)
        assert app.state.models.queue("crawl").running == 0
        sent = backend.sent
        time.sleep(0.3)
        assert backend.sent == sent < 50  # nothing more was generated for nobody
        r = httpx.post(url + "/completions", json={"model": "crawl", "prompt": "x", "max_tokens": 3}, timeout=10)
        assert r.json()["choices"][0]["text"] == "step step step"


def test_any_model_serves_specs_clients_name(kit):
    from simulacra.serve import create_app

    with kit.running(create_app([], [], any_model=True)) as url:
        r = httpx.post(url + "/completions", json={"model": "fake:made up on the spot", "prompt": "x"})
        assert r.json()["choices"][0]["text"] == "made up on the spot"
        assert_error(httpx.post(url + "/completions", json={"model": "warp:drive", "prompt": "x"}), 400,
                     "unknown engine 'warp:'")


def test_the_loom_router_sits_behind_the_key_and_the_web_ui_is_public(kit, tmp_path, monkeypatch):
    """Built separately, the loom's routes and the web UI's files are picked up when present."""
    import sys
    import types

    from fastapi import APIRouter

    from simulacra.serve import app as app_module

    router = APIRouter()
    router.add_api_route("/api/loom/trees", lambda: {"trees": []}, methods=["GET"])
    monkeypatch.setitem(sys.modules, "simulacra.serve.loom_routes", types.SimpleNamespace(router=router))
    (tmp_path / "index.html").write_text("<h1>simulacra</h1>")
    monkeypatch.setattr(app_module, "WEB", tmp_path)
    app = app_module.create_app([], [kit.FAKE], api_keys=[kit.KEY])
    with kit.running(app) as url:
        root = url.removesuffix("/v1")
        assert httpx.get(root + "/").text == "<h1>simulacra</h1>"
        assert_error(httpx.get(root + "/api/loom/trees"), 401)
        auth = {"Authorization": f"Bearer {kit.KEY}"}
        assert httpx.get(root + "/api/loom/trees", headers=auth).json() == {"trees": []}
        assert httpx.get(url + "/models", headers=auth).json()["object"] == "list"  # not shadowed by /
