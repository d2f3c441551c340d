"""Our llama.cpp backend (through Engine) against raw xllamacpp, greedy, same model and settings.

    python bench/engine_llama.py [MODEL.gguf] [--tokens 128] [--repeats 5]

Prints tokens/s (decoding, after the first token) and time to first token for both, and their
ratio; the goal is ours >= 0.95x raw. Runs alternate between the two so that load from other
processes on this machine hits both alike, and each figure is the best run (other processes can
only slow a run down, so the best run is the least disturbed one; timeit does the same).
"""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

PROMPT = ("The old lighthouse keeper climbed the stairs every evening to light the lamp. "
          "One night, as the storm rolled in from the sea,")


def default_model() -> Path:
    home = Path(os.environ.get("SIMULACRA_HOME") or "~/.local/share/simulacra").expanduser()
    return home / "models" / "smollm2-135m-instruct" / "SmolLM2-135M-Instruct.Q4_1.gguf"


def bench_engine(path, prompt: str = PROMPT, n_tokens: int = 128, repeats: int = 3) -> dict:
    """Our LlamaCppBackend through Engine, greedy: dict(tokens_per_s, ttft_s), best of the runs."""
    from simulacra.engine.base import Engine
    from simulacra.engine.llamacpp import LlamaCppBackend

    engine = Engine(LlamaCppBackend(path))
    try:
        return _best([_engine_run(engine, prompt, n_tokens) for _ in range(repeats + 1)][1:])
    finally:
        asyncio.run(engine.aclose())


def bench_raw(path, prompt: str = PROMPT, n_tokens: int = 128, repeats: int = 3) -> dict:
    """xllamacpp's Server with the same settings and no simulacra layers: dict(tokens_per_s, ttft_s)."""
    server = _raw_server(path)
    return _best([_raw_run(server, prompt, n_tokens) for _ in range(repeats + 1)][1:])  # first run warms up


def _engine_run(engine, prompt: str, n_tokens: int) -> dict:
    from simulacra.types import Sampling

    async def go():
        start, first, usage = time.perf_counter(), None, None
        async for chunk in engine.complete(prompt, Sampling(temperature=0.0, max_tokens=n_tokens)):
            if first is None and chunk.text:
                first = time.perf_counter()
            usage = chunk.usage or usage
        return _figures(start, first, time.perf_counter(), usage["completion_tokens"])

    return asyncio.run(go())


def _raw_server(path):
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = str(path)
    params.n_ctx = 4096  # what LlamaCppBackend picks for this model
    params.port = 0
    params.verbosity = -1
    return xllamacpp.Server(params)


def _raw_run(server, prompt: str, n_tokens: int) -> dict:
    # The sampling fields LlamaCppBackend sends for greedy decoding, streamed to a callback.
    body = {"prompt": prompt, "max_tokens": n_tokens, "temperature": 0.0, "top_k": 0, "top_p": 1.0, "min_p": 0.0,
            "repeat_penalty": 1.0, "frequency_penalty": 0.0, "presence_penalty": 0.0, "stream": True,
            "stream_options": {"include_usage": True}}
    marks: dict = {"first": None, "tokens": 0}

    def on_event(event):
        if marks["first"] is None and any(c.get("text") for c in event.get("choices") or ()):
            marks["first"] = time.perf_counter()
        if event.get("usage"):
            marks["tokens"] = event["usage"]["completion_tokens"]
        return False

    start = time.perf_counter()
    server.handle_completions(body, on_event)
    return _figures(start, marks["first"], time.perf_counter(), marks["tokens"])


def _figures(start: float, first: float | None, end: float, tokens: int) -> dict:
    first = first or end
    decode = end - first
    return {"tokens_per_s": (tokens - 1) / decode if tokens > 1 and decode > 0 else 0.0,
            "ttft_s": first - start, "tokens": tokens}


def _best(runs: list[dict]) -> dict:
    return {"tokens_per_s": max(r["tokens_per_s"] for r in runs), "ttft_s": min(r["ttft_s"] for r in runs),
            "tokens": runs[0]["tokens"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", nargs="?", default=str(default_model()))
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if not Path(args.model).exists():
        sys.exit(f"no model at {args.model}; run  simulacra models pull smollm2-135m-instruct")

    from simulacra.engine.base import Engine
    from simulacra.engine.llamacpp import LlamaCppBackend

    engine, server = Engine(LlamaCppBackend(args.model)), _raw_server(args.model)
    ours, raw = [], []
    for i in range(args.repeats + 1):  # alternate; the first pair warms both up
        ours.append(_engine_run(engine, PROMPT, args.tokens))
        raw.append(_raw_run(server, PROMPT, args.tokens))
    ours_m, raw_m = _best(ours[1:]), _best(raw[1:])
    ratio = ours_m["tokens_per_s"] / raw_m["tokens_per_s"]
    print(f"model {Path(args.model).name}, {ours_m['tokens']:.0f} tokens, best of {args.repeats}")
    print(f"raw xllamacpp : {raw_m['tokens_per_s']:7.1f} tokens/s  ttft {raw_m['ttft_s'] * 1000:6.1f} ms")
    print(f"simulacra     : {ours_m['tokens_per_s']:7.1f} tokens/s  ttft {ours_m['ttft_s'] * 1000:6.1f} ms")
    print(f"ratio (ours/raw) {ratio:.3f}  (goal >= 0.95)")
    asyncio.run(engine.aclose())


if __name__ == "__main__":
    main()
