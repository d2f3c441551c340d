"""Files in and out: reading a person's UTF-8 text, where simulacra keeps state, and the two ways
it writes state (DESIGN.md §6): SQLite in WAL mode, or files replaced atomically, so a crash leaves
the old version or the new, never half of one."""
from __future__ import annotations

import contextlib
import os
import sqlite3
import sys
import tempfile
from pathlib import Path

from simulacra.errors import ConfigError, InputError


def home() -> Path:
    """``$SIMULACRA_HOME``, default ``~/.local/share/simulacra``: models, caches, the loom."""
    return Path(os.environ.get("SIMULACRA_HOME") or "~/.local/share/simulacra").expanduser()


def read_text_file(path: str | os.PathLike) -> str:
    """The text of a file ("-" for stdin); InputError naming the file if it is not UTF-8."""
    name = "standard input" if str(path) == "-" else str(path)
    try:
        data = sys.stdin.buffer.read() if str(path) == "-" else Path(path).read_bytes()
    except FileNotFoundError:
        raise InputError(f"no such file: {name}") from None
    except OSError as e:
        raise InputError(f"cannot read {name}: {e.strerror or e}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InputError(f"{name} is not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start}); "
                         "convert it first, e.g. iconv -f latin1 -t utf-8") from None


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
