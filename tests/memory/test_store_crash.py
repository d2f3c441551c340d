"""A writer SIGKILLed mid-stream loses nothing it reported committed and leaves no torn rows."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys

import numpy as np

from simulacra.engine.embed import HashEmbedder
from simulacra.memory import MemoryStore

WRITER = """
import sys
from simulacra.engine.embed import HashEmbedder
from simulacra.memory import MemoryStore

store = MemoryStore(sys.argv[1], HashEmbedder(64))
for i in range(1000):
    m = store.add(f"memory {i} " + "word " * (i % 40), importance=1 + i % 10)
    print(m.id, i, flush=True)  # printed only after the commit returned
"""


def text_of(i: int) -> str:
    return f"memory {i} " + "word " * (i % 40)


def test_sigkill_mid_write_keeps_every_committed_memory(tmp_path):
    path = tmp_path / "state" / "memory.db"
    child = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True)
    reported = []
    for line in child.stdout:
        reported.append(tuple(map(int, line.split())))
        if len(reported) == 300:
            os.kill(child.pid, signal.SIGKILL)
            break
    reported += [tuple(map(int, line.split())) for line in child.stdout]  # lines already in the pipe
    child.wait()
    assert child.returncode == -signal.SIGKILL
    assert 300 <= len(reported) < 1000

    db = sqlite3.connect(path)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    lengths = {n for (n,) in db.execute("SELECT DISTINCT length(embedding) FROM memories")}
    assert lengths == {64 * 4}
    rows = db.execute("SELECT count(*) FROM memories").fetchone()[0]
    assert len(reported) <= rows <= len(reported) + 1  # at most one committed but not yet printed
    db.close()

    store = MemoryStore(path, HashEmbedder(64))
    embedder = HashEmbedder(64)
    for id, i in reported:
        m = store.get(id)
        assert m is not None and m.text == text_of(i) and m.importance == 1 + i % 10
        assert np.array_equal(m.embedding, embedder.embed([text_of(i)])[0])
    assert store.search("memory 5 word", 3)  # and it is usable for writing and searching
    store.add("after the crash")
