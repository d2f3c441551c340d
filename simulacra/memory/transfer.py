"""Checking exported memories on their way back in (``MemoryStore.import_``).

Export files may be hand-edited, so every record is checked before anything is written, and an
error names the record and the field to fix.
"""
from __future__ import annotations

import base64
import binascii
from typing import Any, Mapping, Sequence

import numpy as np

from simulacra.errors import InputError
from simulacra.memory.scoring import heuristic_importance

KINDS = ("observation", "reflection", "note")


def check_fields(text: Any, kind: Any, importance: Any) -> tuple[str, str, int]:
    """Validate a memory's text, kind and importance; importance defaults to the heuristic."""
    if not isinstance(text, str) or not text.strip():
        raise InputError("a memory needs non-empty text")
    if kind not in KINDS:
        raise InputError(f"unknown memory kind '{kind}'; use one of {', '.join(KINDS)}")
    if importance is None:
        importance = heuristic_importance(text)
    if isinstance(importance, bool) or not isinstance(importance, (int, float)) \
            or importance != int(importance) or not 1 <= importance <= 10:
        raise InputError(f"importance must be a whole number from 1 to 10, not {importance!r}")
    return text, kind, int(importance)


def parse_records(records: Sequence[Mapping[str, Any]], now: float, embedder: str, dim: int) -> list[dict]:
    if not isinstance(records, (list, tuple)):
        raise InputError("memories to import must be a list of objects (as `simulacra memory export` writes)")
    rows, seen = [], set()
    for n, record in enumerate(records, 1):
        try:
            row = _parse(record, now, embedder, dim)
        except InputError as e:
            raise InputError(f"memory record {n}: {e}") from None
        if row["id"] is not None:
            if row["id"] in seen:
                raise InputError(f"memory record {n}: id {row['id']} appears twice; give each record its own id")
            seen.add(row["id"])
        rows.append(row)
    return rows


def _parse(record: Any, now: float, embedder: str, dim: int) -> dict:
    if not isinstance(record, Mapping):
        raise InputError(f"expected an object with at least 'text', got {type(record).__name__}")
    unknown = set(record) - {"id", "text", "kind", "created_at", "last_accessed", "importance",
                             "cites", "meta", "embedding", "embedder"}
    if unknown:
        raise InputError(f"unknown field(s) {', '.join(sorted(unknown))}")
    text, kind, importance = check_fields(record.get("text"), record.get("kind", "observation"),
                                    record.get("importance"))
    created = _number(record.get("created_at", now), "created_at")
    accessed = _number(record.get("last_accessed", created), "last_accessed")
    meta = record.get("meta") or {}
    if not isinstance(meta, Mapping):
        raise InputError("'meta' must be an object")
    cites = record.get("cites") or []
    if not isinstance(cites, list) or not all(_is_int(c) for c in cites):
        raise InputError("'cites' must be a list of memory ids")
    id = record.get("id")
    if id is not None and not _is_int(id):
        raise InputError(f"'id' must be a whole number, not {id!r}")
    return {"id": id, "text": text, "kind": kind, "importance": importance, "created_at": created,
            "last_accessed": accessed, "meta": dict(meta), "cites": [int(c) for c in cites],
            "embedding": _vector(record, embedder, dim)}


def _vector(record: Mapping, embedder: str, dim: int) -> np.ndarray | None:
    """The record's embedding if it was made by our embedder and decodes to the right size."""
    if record.get("embedder") != embedder or not isinstance(record.get("embedding"), str):
        return None
    try:
        raw = base64.b64decode(record["embedding"], validate=True)
    except (binascii.Error, ValueError):
        return None
    return np.frombuffer(raw, dtype="<f4").astype(np.float32) if len(raw) == 4 * dim else None


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"'{name}' must be a number of seconds since 1970, not {value!r}")
    return float(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
