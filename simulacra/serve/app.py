"""The HTTP server: ``create_app(...)`` builds a FastAPI app serving ems and models.

    request ─ BodyLimit ─ KeyCheck ─ route (openai_routes) ─ Models.engine ─ FairQueue ─ engine

``Models`` knows what may be asked for (served ems, ``--model`` specs, installed catalogue
models) and loads each engine once, on first use or by ``preload``. Every error leaves in
OpenAI's body shape, ``{"error": {"message", "type", "param", "code"}}``, with the status its
``SimulacraError`` class declares. The web UI and the loom are optional parts built apart:
their router is mounted behind the same key check, and their static files at ``/``, only when
the modules exist.
"""
from __future__ import annotations

import asyncio
import difflib
import logging
import secrets
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from simulacra.engine.spec import default_model, load_engine, parse_spec
from simulacra.errors import ModelNotFound, SimulacraError
from simulacra.serve.queue import FairQueue, QueueFull
from simulacra.serve.schemas import error_body

if TYPE_CHECKING:
    from fastapi import FastAPI

    from simulacra.engine.base import Engine
    from simulacra.ems import Em

log = logging.getLogger(__name__)
MAX_BODY = 1_000_000


class Models:
    """What the server can run, and the engines it has loaded (one per spec, shared by ems)."""

    def __init__(self, ems: Sequence["Em"] = (), specs: Sequence[str] = (), *, parallel: int = 1,
                 queue_depth: int = 16, any_model: bool = False, loader: Callable[[str], "Engine"] | None = None):
        self.ems = {em.name: em for em in ems}
        self.specs = list(dict.fromkeys(specs))
        self.parallel, self.queue_depth, self.any_model = parallel, queue_depth, any_model
        self.loader = loader or (lambda spec: _load(spec, parallel))
        self.created = int(time.time())
        self._engines: dict[str, "Engine"] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._queues: dict[str, FairQueue] = {}

    def spec_of(self, em: "Em") -> str:
        return em.config.continuation_model or default_model()

    def cards(self) -> list[dict]:
        cards = [(name, "simulacra-em") for name in self.ems]
        cards += [(spec, "simulacra") for spec in self.specs]
        cards += [(name, "simulacra-catalogue") for name in _installed_catalogue()]
        seen: dict[str, str] = {}
        for name, owner in cards:
            seen.setdefault(name, owner)  # an em shadows a model of the same name
        return [{"id": name, "object": "model", "created": self.created, "owned_by": owner}
                for name, owner in seen.items()]

    def find(self, model: str) -> tuple["Em | None", str]:
        """(the em, its engine spec) or (None, the model's spec); ModelNotFound otherwise."""
        if model in self.ems:
            em = self.ems[model]
            return em, self.spec_of(em)
        if model in self.specs or model in _installed_catalogue():
            return None, model
        if self.any_model:
            parse_spec(model)  # an unknown engine kind is a ConfigError (400), not a load attempt
            return None, model
        names = [c["id"] for c in self.cards()]
        close = difflib.get_close_matches(model, names, n=3, cutoff=0.4)
        hint = f"; did you mean {', '.join(close)}?" if close else \
            (f"; this server has {', '.join(names[:8])}" if names else "; this server has no models")
        raise ModelNotFound(f"the model '{model}' does not exist{hint}")

    async def engine(self, spec: str) -> "Engine":
        if spec in self._engines:
            return self._engines[spec]
        async with self._locks.setdefault(spec, asyncio.Lock()):  # concurrent first requests load once
            if spec not in self._engines:
                self._engines[spec] = await asyncio.to_thread(self.loader, spec)
        return self._engines[spec]

    def queue(self, spec: str) -> FairQueue:
        if spec not in self._queues:
            self._queues[spec] = FairQueue(self.parallel, self.queue_depth)
        return self._queues[spec]

    def preload(self) -> None:
        """Load the served ems' engines and the --model specs now (a bad one fails the start)."""
        for spec in dict.fromkeys([*map(self.spec_of, self.ems.values()), *self.specs]):
            if spec not in self._engines:
                self._engines[spec] = self.loader(spec)

    async def aclose(self) -> None:
        for engine in self._engines.values():
            await engine.aclose()
        self._engines.clear()


def _load(spec: str, parallel: int) -> "Engine":
    """load_engine, with llama.cpp's parallel slots when asked for (one shared KV cache)."""
    kind, rest = parse_spec(spec)
    if kind != "llama" or parallel <= 1:
        return load_engine(spec)
    from simulacra.engine.base import Engine
    from simulacra.engine.catalogue import resolve
    from simulacra.engine.llamacpp import LlamaCppBackend

    return Engine(LlamaCppBackend(resolve(rest), n_parallel=parallel, kv_unified=True), name=spec)


_CATALOGUE: tuple[float, list[str]] = (0.0, [])
CATALOGUE_TTL = 5.0  # seconds: a pull shows up soon, and requests do not each read catalogue.yaml


def _installed_catalogue() -> list[str]:
    global _CATALOGUE
    if time.monotonic() - _CATALOGUE[0] < CATALOGUE_TTL:
        return _CATALOGUE[1]
    from simulacra.engine import catalogue

    try:
        names = [e.name for e in catalogue.entries() if e.kind != "embedding" and catalogue.is_installed(e.name)]
    except SimulacraError as e:  # a broken catalogue.yaml must not take the server down
        log.warning("catalogue unavailable: %s", e)
        names = []
    _CATALOGUE = (time.monotonic(), names)
    return names


# --- middleware (plain ASGI: no per-chunk overhead on streams) --------------------------------------

class BodyLimit:
    """413 for bodies over ``limit`` bytes: by Content-Length before reading, else while counting."""

    def __init__(self, app, limit: int = MAX_BODY):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            return await send_error(send, 413, self._message(), "request_too_large")
        seen = 0

        async def counted():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise _too_large(self._message())
            return message

        await self.app(scope, counted, send)

    def _message(self) -> str:
        return f"the request body is over {self.limit} bytes; send less (or start the server with a larger --max-body)"


def _too_large(message: str):
    # FastAPI turns errors while reading a body into 400s, except HTTPExceptions.
    from starlette.exceptions import HTTPException

    return HTTPException(413, message)


class KeyCheck:
    """Bearer-key check for the API routes; records the caller's key for fair queueing."""

    def __init__(self, app, keys: Sequence[str], protected: Callable[[dict], bool]):
        self.app, self.keys, self.protected = app, [k.encode() for k in keys], protected

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not self.protected(scope):
            return await self.app(scope, receive, send)
        auth = dict(scope["headers"]).get(b"authorization", b"")
        scheme, _, given = auth.partition(b" ")
        given = given.strip() if scheme.lower() == b"bearer" else b""
        if self.keys:
            if not given:
                return await send_error(send, 401, "no API key: send the header  Authorization: Bearer KEY",
                                        "invalid_api_key")
            if not any(secrets.compare_digest(given, k) for k in self.keys):
                return await send_error(send, 401, "wrong API key", "invalid_api_key")
        scope.setdefault("state", {})["client_key"] = given.decode("latin-1")
        await self.app(scope, receive, send)


async def send_error(send, status: int, message: str, code: str | None = None) -> None:
    import json

    body = json.dumps(error_body(message, status, code=code)).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


# --- the app ----------------------------------------------------------------------------------------

def create_app(ems: Sequence["Em | str | Path"] = (), models: Sequence[str] = (), *, api_keys: Sequence[str] = (),
               parallel: int = 1, queue_depth: int = 16, max_body: int = MAX_BODY, any_model: bool = False,
               loader: Callable[[str], "Engine"] | None = None) -> "FastAPI":
    """The server app. ``ems``: Em objects or folders; ``models``: model specs served as they are;
    ``api_keys``: accepted bearer keys (none: no check); ``parallel``: requests decoded at once
    per engine (llama.cpp slots); ``queue_depth``: requests one key may have waiting per engine;
    ``any_model``: also serve any model spec a client names (trusted clients only: a spec can
    name files and URLs); ``loader``: spec -> Engine (default load_engine)."""
    from simulacra.errors import require

    fastapi = require("fastapi", "serve")
    from simulacra.ems import Em
    from simulacra.serve import openai_routes

    loaded = [em if isinstance(em, Em) else Em.load(em) for em in ems]
    registry = Models(loaded, models, parallel=parallel, queue_depth=queue_depth, any_model=any_model, loader=loader)

    @asynccontextmanager
    async def lifespan(app):
        yield
        await registry.aclose()

    app = fastapi.FastAPI(title="simulacra", version="0.1.0", lifespan=lifespan,
                          description="OpenAI-compatible API for ems and models")
    app.state.models = registry
    app.include_router(openai_routes.router)
    extra_routes = _include_loom(app)
    openai_routes.install_error_handlers(app)
    _mount_web(app)

    def protected(scope: dict) -> bool:
        from starlette.routing import Match

        path = scope.get("path", "")
        return path == "/v1" or path.startswith("/v1/") or any(r.matches(scope)[0] != Match.NONE for r in extra_routes)

    app.add_middleware(KeyCheck, keys=list(api_keys), protected=protected)
    app.add_middleware(BodyLimit, limit=max_body)  # outermost: refuse big bodies before anything else
    return app


def _include_loom(app) -> list:
    """The loom's API (built separately, in simulacra.serve.loom_routes); its routes need the key."""
    try:
        from simulacra.serve.loom_routes import router
    except ModuleNotFoundError as e:
        if e.name != "simulacra.serve.loom_routes":
            raise
        return []  # not built (yet): the OpenAI API stands alone
    before = len(app.router.routes)
    app.include_router(router)
    return app.router.routes[before:]


WEB = Path(__file__).with_name("web")  # the web UI's static files, built separately


def _mount_web(app) -> None:
    """The web UI at / (optional; mounted last so the API routes win; public: it holds no data)."""
    if WEB.is_dir():
        from starlette.staticfiles import StaticFiles

        app.mount("/", StaticFiles(directory=WEB, html=True), name="web")


__all__ = ["create_app", "Models", "QueueFull", "MAX_BODY"]
