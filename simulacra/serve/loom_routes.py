"""The loom's JSON API under /api, for the web UI (chat itself goes through /v1/chat/completions).

    GET  /api/trees                     {"trees": [tree]}
    POST /api/trees                     {"text", "title"?}              -> 201 {"tree", "nodes"}
    GET  /api/trees/{id}                ?hidden=true to include hidden  -> {"tree", "nodes"}
    GET  /api/trees/{id}/export         the tree as a JSON file
    POST /api/trees/import              an exported file as the body    -> 201 {"tree", "nodes"}
    GET  /api/nodes/{id}                                                -> {"node", "full_text"}
    POST /api/nodes/{id}/children       {"text"}                        -> {"node"}
    POST /api/nodes/{id}/generate       {"model", "n", "max_tokens", "temperature"?, "top_p"?, "seed"?}
                                                                        -> {"nodes"}
    POST /api/nodes/{id}/edit           {"text"}  a new sibling         -> {"node"}
    POST /api/nodes/{id}/bookmark       {"on"?}   toggles without "on"  -> {"node"}
    POST /api/nodes/{id}/hide           {"hidden"?: true}               -> {"node"}

``model`` is anything /v1/models lists. An em generates with its own engine and sampling
settings but without its stop sequences: a loom continues raw text, it does not take turns.
The store is ``app.state.loom`` (opened at $SIMULACRA_HOME/loom.db on first use if unset).
"""
from __future__ import annotations

import dataclasses

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from simulacra.loom import Loom, generate
from simulacra.serve.schemas import MAX_N
from simulacra.types import Sampling

router = APIRouter(prefix="/api", tags=["loom"])
MAX_GENERATE_TOKENS = 4096


class _Body(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


class NewTree(_Body):
    text: str
    title: str | None = Field(None, max_length=200)


class Text(_Body):
    text: str


class Generate(_Body):
    model: str = Field(min_length=1)
    n: int = Field(3, ge=1, le=MAX_N)
    max_tokens: int = Field(48, ge=1, le=MAX_GENERATE_TOKENS)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    seed: int | None = None


class Bookmark(_Body):
    on: bool | None = None


class Hide(_Body):
    hidden: bool = True


def loom_of(request: Request) -> Loom:
    state = request.app.state
    if getattr(state, "loom", None) is None:
        state.loom = Loom()
    return state.loom


def _view(loom: Loom, tree_id: int, hidden: bool = False) -> dict:
    return {"tree": loom.tree(tree_id).as_dict(), "nodes": [n.as_dict() for n in loom.nodes(tree_id, hidden)]}


# --- trees ------------------------------------------------------------------------------------------

@router.get("/trees")
async def list_trees(request: Request) -> dict:
    return {"trees": [t.as_dict() for t in loom_of(request).trees()]}


@router.post("/trees", status_code=201)
async def new_tree(body: NewTree, request: Request) -> dict:
    loom = loom_of(request)
    return _view(loom, loom.new_tree(body.text, body.title).id)


@router.get("/trees/{tree_id}")
async def get_tree(tree_id: int, request: Request, hidden: bool = False) -> dict:
    return _view(loom_of(request), tree_id, hidden)


@router.get("/trees/{tree_id}/export")
async def export_tree(tree_id: int, request: Request) -> JSONResponse:
    data = loom_of(request).export(tree_id)
    return JSONResponse(data, headers={"Content-Disposition": f'attachment; filename="loom-{tree_id}.json"'})


@router.post("/trees/import", status_code=201)
async def import_tree(request: Request) -> dict:
    loom = loom_of(request)
    return _view(loom, loom.import_tree(await request.body()).id)  # validated whole, written in one transaction


# --- nodes ------------------------------------------------------------------------------------------

@router.get("/nodes/{node_id}")
async def get_node(node_id: int, request: Request) -> dict:
    loom = loom_of(request)
    return {"node": loom.node(node_id).as_dict(), "full_text": loom.full_text(node_id)}


@router.post("/nodes/{node_id}/children")
async def add_child(node_id: int, body: Text, request: Request) -> dict:
    return {"node": loom_of(request).add_child(node_id, body.text).as_dict()}


@router.post("/nodes/{node_id}/edit")
async def edit_node(node_id: int, body: Text, request: Request) -> dict:
    return {"node": loom_of(request).edit(node_id, body.text).as_dict()}


@router.post("/nodes/{node_id}/bookmark")
async def bookmark_node(node_id: int, request: Request, body: Bookmark | None = None) -> dict:
    return {"node": loom_of(request).bookmark(node_id, body.on if body else None).as_dict()}


@router.post("/nodes/{node_id}/hide")
async def hide_node(node_id: int, request: Request, body: Hide | None = None) -> dict:
    return {"node": loom_of(request).hide(node_id, body.hidden if body else True).as_dict()}


@router.post("/nodes/{node_id}/generate")
async def generate_children(node_id: int, body: Generate, request: Request) -> dict:
    loom = loom_of(request)
    loom.node(node_id)  # a bad id is a 404 before any model loads
    models = request.app.state.models
    em, spec = models.find(body.model)
    engine = await models.engine(spec)
    base = em.sampling(stop=()) if em is not None else Sampling(temperature=1.0)
    changes = {k: getattr(body, k) for k in ("temperature", "top_p", "seed") if getattr(body, k) is not None}
    sampling = dataclasses.replace(base, **changes, max_tokens=body.max_tokens)
    slot = await models.queue(spec).acquire(getattr(request.state, "client_key", ""))
    try:
        nodes = await generate(loom, node_id, engine, body.n, sampling, author=body.model)
    finally:
        slot.release()
    return {"nodes": [n.as_dict() for n in nodes]}
