"""Do the example ems sound different? (issue: goal >= 70% with the default model)

Each example em replies to the same 10 prompts. A nearest-centroid classifier over MiniLM
embeddings of each em's own corpus names the em a reply came from. Baseline: the same model and
prompts with faculties switched off (only the conversation and the em's name in the prompt).
"""
from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import numpy as np

from simulacra.ems import Em
from simulacra.ems.corpus import load_corpus
from simulacra.ems.respond import respond
from simulacra.engine import load_engine
from simulacra.engine.embed import get_embedder
from simulacra.types import Message

PROMPTS = [
    "Hello! Who are you?", "What did you do today?", "What do you think of the weather?",
    "Tell me about your work.", "What are you afraid of?", "Any advice for a stranger?",
    "What's the best meal you've had?", "Do you like music?", "What keeps you up at night?",
    "Tell me a secret.",
]


def centroids(ems: list[Em], embed) -> np.ndarray:
    """Each em's centre: its own lines in its corpus (not what others say to it), as plain text."""
    rows = []
    for em in ems:
        chunks = load_corpus(em.corpus_folder)
        own = [m.content for c in chunks for m in c.messages if m.author and m.author.lower() == em.name.lower()]
        vectors = embed.embed(own or [c.text for c in chunks])
        centre = vectors.mean(axis=0)
        rows.append(centre / np.linalg.norm(centre))
    return np.stack(rows)


async def replies(em: Em, engine, faculties: bool) -> list[str]:
    if not faculties:
        em = Em(em.folder, em.config, [])
    out = []
    for i, text in enumerate(PROMPTS):
        reply = await respond(em, [Message("user", text)], engine, seed=1000 + i)
        out.append(" ".join(m.content for m in reply.messages) or "")
    return out


async def accuracy(ems, engine, embed, centres, faculties: bool) -> float:
    right = total = 0
    for label, em in enumerate(ems):
        texts = await replies(em, engine, faculties)
        guesses = (embed.embed(texts) @ centres.T).argmax(axis=1)
        right += int((guesses == label).sum())
        total += len(texts)
        if faculties:
            print(f"  {em.name}: {(guesses == label).mean():.0%} right, e.g. {texts[0][:60]!r}")
    return right / total


async def main() -> None:
    folders = sorted(p.parent for p in Path("examples/ems").glob("*/config.yaml"))
    ems = [Em.load(f) for f in folders]
    if len(ems) < 2:
        sys.exit("need at least two example ems in examples/ems")
    engine = load_engine(sys.argv[1] if len(sys.argv) > 1 else None)
    embed = get_embedder()
    centres = centroids(ems, embed)
    print(f"{len(ems)} ems ({', '.join(e.name for e in ems)}), {len(PROMPTS)} prompts each, model {engine.name}")
    with_faculties = await accuracy(ems, engine, embed, centres, faculties=True)
    baseline = await accuracy(ems, engine, embed, centres, faculties=False)
    print(f"nearest-centroid accuracy with faculties: {with_faculties:.0%}  (goal >= 70%)")
    print(f"baseline, faculties off:                  {baseline:.0%}  (chance {1 / len(ems):.0%})")


if __name__ == "__main__":
    asyncio.run(main())
