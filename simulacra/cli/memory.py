"""`simulacra memory EM_FOLDER list|search|add|forget|export|import`: look into an em's memory."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from simulacra.cli.app import app, console
from simulacra.errors import ConfigError, InputError

memory_app = typer.Typer(help="Inspect and edit an em's long-term memory (state/memory.db).",
                         no_args_is_help=True)
app.add_typer(memory_app, name="memory")


@memory_app.callback()
def _em(ctx: typer.Context,
        em_folder: Path = typer.Argument(..., help="The em's folder (memory lives in state/memory.db)."),
        embedder: Optional[str] = typer.Option(
            None, help="minilm or hash[-DIM]; default: what the memory was written with, else minilm.")):
    if not em_folder.is_dir():
        raise ConfigError(f"em folder {em_folder} does not exist; pass the path of an em's folder")
    ctx.obj = {"folder": em_folder, "embedder": embedder}


def _open(ctx: typer.Context, create: bool = True):
    """The em's MemoryStore, or None when it has none yet and ``create`` is False."""
    from simulacra.engine.embed import CachedEmbedder, embedder_by_name
    from simulacra.memory.store import MemoryStore, memory_path, stored_embedder

    folder, name = ctx.obj["folder"], ctx.obj["embedder"]
    path = memory_path(folder)
    if not create and not path.exists():
        return None
    embedder = embedder_by_name(name or stored_embedder(path) or "minilm")
    # Queries typed here repeat; the cache (safe to delete) saves loading the model for them.
    return MemoryStore(path, CachedEmbedder(embedder, folder / "state" / "cache"))


@memory_app.command("list")
def list_(ctx: typer.Context, kind: Optional[str] = typer.Option(None, help="observation, reflection or note."),
          last: int = typer.Option(0, help="Show only the newest N (0: all).")):
    """List memories, oldest first."""
    store = _open(ctx, create=False)
    memories = store.all(kind) if store else []
    if last > 0:
        memories = memories[-last:]
    table = Table("id", "kind", "imp", "created", "text", "cites")
    table.columns[3].no_wrap = True
    table.columns[4].min_width = 24
    for m in memories:
        table.add_row(str(m.id), m.kind, str(m.importance), _when(m.created_at), m.text,
                      ",".join(map(str, m.cites)))
    console.out.print(table if memories else "no memories")


@memory_app.command()
def search(ctx: typer.Context, query: str = typer.Argument(..., help="What to recall."),
           k: int = typer.Option(5, "-k", help="How many memories."),
           recency: float = typer.Option(1.0, help="Weight of recency."),
           importance: float = typer.Option(1.0, help="Weight of importance."),
           relevance: float = typer.Option(1.0, help="Weight of relevance."),
           kind: Optional[str] = typer.Option(None, help="Only this kind."),
           touch: bool = typer.Option(False, help="Mark the hits accessed now, as the em's own recall does.")):
    """Recall the memories that best fit QUERY (recency + importance + relevance)."""
    store = _open(ctx, create=False)
    hits = store.search(query, k, (recency, importance, relevance), kind=kind, touch=touch) if store else []
    table = Table("score", "rec", "imp", "rel", "id", "kind", "text")
    for h in hits:
        table.add_row(f"{h.score:.3f}", f"{h.recency:.2f}", f"{h.importance:.2f}", f"{h.relevance:.2f}",
                      str(h.memory.id), h.memory.kind, h.memory.text)
    console.out.print(table if hits else "no memories")


@memory_app.command()
def add(ctx: typer.Context, text: str = typer.Argument(..., help="The memory's text."),
        kind: str = typer.Option("note", help="observation, reflection or note."),
        importance: Optional[int] = typer.Option(None, help="1..10; default: guessed from the text."),
        cite: list[int] = typer.Option([], help="Id of a memory this one draws on (repeatable).")):
    """Add a memory."""
    with _open(ctx) as store:
        m = store.add(text, kind=kind, importance=importance, cites=cite)
    console.out.print(f"added memory {m.id} ({m.kind}, importance {m.importance})")


@memory_app.command()
def forget(ctx: typer.Context, id: int = typer.Argument(..., help="The memory's id (see `list`).")):
    """Delete a memory."""
    store = _open(ctx, create=False)
    if store is None or not store.forget(id):
        raise InputError(f"no memory {id} in {ctx.obj['folder']}; see `simulacra memory EM list`")
    console.out.print(f"forgot memory {id}")


@memory_app.command()
def export(ctx: typer.Context, embeddings: bool = typer.Option(False, help="Include the vectors (base64).")):
    """Write every memory as JSON to stdout."""
    store = _open(ctx, create=False)
    console.write(json.dumps(store.export(embeddings) if store else [], ensure_ascii=False, indent=1) + "\n")


@memory_app.command("import")
def import_(ctx: typer.Context, file: Path = typer.Argument(..., help="JSON from `export`; - for stdin.")):
    """Add memories from an export (all or nothing)."""
    import sys

    try:
        raw = sys.stdin.read() if str(file) == "-" else file.read_text(encoding="utf-8")
        records = json.loads(raw)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"cannot read memories from {file}: {e}") from None
    with _open(ctx) as store:
        imported = store.import_(records)
    console.out.print(f"imported {len(imported)} memories")


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(t))
