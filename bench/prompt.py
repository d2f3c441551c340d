"""Prompt assembly time vs history length, with four faculties (issue: < 50 ms at 20k, linear).

Builds an em in a temp folder (character + history + lore + notes), then times build_prompt on
histories of 1k, 5k and 20k messages after a warm-up, with the default model's real tokenizer when
it is pulled (else a whitespace counter), and a recency window large enough to admit them all.
"""
from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import yaml

from simulacra.ems import Em
from simulacra.ems.prompt import build_prompt
from simulacra.types import Message


def make_em(root: Path) -> Em:
    folder = root / "bench"
    (folder / "bench.chr").mkdir(parents=True)
    lines = [f"<bench> On topic {i}, I would say the tide of {i} turns slowly.\n<user> Noted {i}." for i in range(300)]
    (folder / "bench.chr" / "corpus.txt").write_text("\n---\n".join(lines) + "\n")
    (folder / "history.txt").write_text("<user> hello\n<bench> hello to you\n" * 20)
    (folder / "lore.yaml").write_text(yaml.safe_dump({"entries": [
        {"keys": [f"topic {i}"], "content": f"Lore about topic {i}."} for i in range(50)]}))
    (folder / "config.yaml").write_text(yaml.safe_dump({
        "recency_window": 1_000_000, "total_max_tokens": 4096, "ensembles": [
            {"faculty": "character", "max_items": 4}, {"faculty": "history", "max_tokens": 300},
            {"faculty": "lore", "max_tokens": 200}, {"faculty": "notes", "text": "{name} is a benchmark."}]}))
    return Em.load(folder)


def counter():
    try:
        from simulacra.engine import load_engine

        engine = load_engine()
        return engine.count_tokens, "llama.cpp tokenizer"
    except Exception as e:  # noqa: BLE001 - the bench still runs without the model
        return (lambda text: len(text.split())), f"whitespace counter ({e})"


async def main() -> None:
    count, what = counter()
    with tempfile.TemporaryDirectory() as tmp:
        em = make_em(Path(tmp))
        print(f"tokens counted with: {what}")
        times = {}
        for n in (1_000, 5_000, 20_000):
            history = [Message("user" if i % 2 else "bench", f"message {i} about topic {i % 50}") for i in range(n)]
            await build_prompt(em, history, count, 8192)  # warm-up: embeddings, index, caches
            runs = []
            for _ in range(5):
                start = time.perf_counter()
                await build_prompt(em, history, count, 8192)
                runs.append(time.perf_counter() - start)
            times[n] = statistics.median(runs)
            print(f"{n:>6} messages: {times[n] * 1000:7.1f} ms (median of 5)")
        print(f"20k/1k time ratio: {times[20_000] / times[1_000]:.2f} (history grew 20x); "
              f"goal < 50 ms at 20k: {'met' if times[20_000] < 0.05 else 'NOT met'}")


if __name__ == "__main__":
    asyncio.run(main())
