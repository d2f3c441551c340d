"""Vector search and memory store speed: exact vs approximate, as ratios within one run.

    python bench/memory.py [--sizes 5000 20000] [--dim 384] [--memories 2000]

Vectors are drawn around 64 random centres (closer to real embeddings than pure noise, which is
the worst case for graph indexes). Prints per-query times, their ratio and the graph's recall@10.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from simulacra.engine.embed import HashEmbedder
from simulacra.engine.vectors import VectorIndex
from simulacra.memory import MemoryStore


def clustered(n: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    centres = rng.standard_normal((64, dim))
    return (centres[rng.integers(0, 64, n)] + 0.6 * rng.standard_normal((n, dim))).astype(np.float32)


def per_query(fn, queries) -> float:
    start = time.perf_counter()
    for q in queries:
        fn(q)
    return (time.perf_counter() - start) / len(queries) * 1e3


def bench_index(n: int, dim: int, rng: np.random.Generator) -> None:
    X, Q = clustered(n, dim, rng), clustered(100, dim, rng)
    exact = VectorIndex(dim, approx_threshold=None)
    approx = VectorIndex(dim, approx_threshold=1)
    exact.add(range(n), X)
    approx.add(range(n), X)
    start = time.perf_counter()
    approx.search(Q[0], 10)  # builds the graph
    build = time.perf_counter() - start
    t_exact = per_query(lambda q: exact.search(q, 10), Q)
    t_approx = per_query(lambda q: approx.search(q, 10), Q)
    recall = np.mean([len({i for i, _ in exact.search(q, 10)} & {i for i, _ in approx.search(q, 10)}) / 10
                      for q in Q])
    print(f"index n={n:>7} dim={dim}: exact {t_exact:7.2f} ms  approx {t_approx:6.2f} ms  "
          f"exact/approx {t_exact / t_approx:5.1f}x  recall@10 {recall:.3f}  graph build {build:.1f} s")


def bench_store(n: int) -> None:
    rng = np.random.default_rng(0)
    words = "tavern river well bird forest market smith baker mill bridge rain ale".split()
    texts = [" ".join(rng.choice(words, 6)) + f" {i}" for i in range(n)]
    with tempfile.TemporaryDirectory() as tmp:
        store = MemoryStore(Path(tmp) / "m.db", HashEmbedder())
        embed = per_query(lambda t: store.embedder.embed([t]), texts[:200])
        start = time.perf_counter()
        for t in texts:
            store.add(t, importance=5)
        add = (time.perf_counter() - start) / n * 1e3
        search = per_query(lambda q: store.search(q, 10), ["who is at the tavern", "rain on the bridge"] * 20)
        store.close()
    print(f"store n={n}: add {add:.2f} ms each (of which hash embedding {embed:.2f} ms), "
          f"search {search:.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 20000])
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--memories", type=int, default=2000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    for n in args.sizes:
        bench_index(n, args.dim, rng)
    bench_store(args.memories)


if __name__ == "__main__":
    main()
