"""Where simulacra keeps state, and the two ways it writes it (DESIGN.md §6): SQLite in WAL mode,
or files replaced atomically, so a crash leaves the old version or the new, never half of one."""
from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
from pathlib import Path

from simulacra.errors import ConfigError


def home() -> Path:
    """``$SIMULACRA_HOME``, default ``~/.local/share/simulacra``: models, caches, the loom."""
    return Path(os.environ.get("SIMULACRA_HOME") or "~/.local/share/simulacra").expanduser()


def atomic_write(path: Path, data: str | bytes) -> None:
    """Replace ``path`` with ``data`` so that readers (and crashes) see the old or the new file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    # Persist the rename itself; not every platform can open a directory.
    with contextlib.suppress(OSError):
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def open_sqlite(path: Path, schema: str, what: str, *, synchronous: str = "FULL") -> sqlite3.Connection:
    """A WAL-mode connection with foreign keys on and ``schema`` applied; one line if it is unreadable."""
    try:
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={synchronous}")
        db.execute("PRAGMA foreign_keys=ON")
        db.executescript(schema)
        return db
    except sqlite3.DatabaseError as e:
        raise ConfigError(f"{path} is not a readable {what} database ({e}); "
                          "move it aside and a fresh one will be created") from None
