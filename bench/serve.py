"""`simulacra serve` against a bare llama.cpp HTTP server: aggregate streaming tokens/s.

    python bench/serve.py [--model smollm2-135m-instruct] [--levels 1,4,8] [--tokens 96] [--repeats 3]

Both servers run the same GGUF in their own process with the same settings (context, parallel
slots, one KV cache shared by the slots); N clients stream /v1/completions at once, greedy, each
with its own prompt, and the figure is completion tokens (from each stream's usage) over the wall
time of the whole batch. Runs alternate between the servers so load from other processes hits
both alike; each figure is the best of the repeats. The goal is ours >= 0.9x bare at each level.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

N_CTX = 4096  # what LlamaCppBackend picks for the default model
TOPICS = ["a lighthouse keeper", "a clockmaker", "a river pilot", "a glassblower", "a beekeeper",
          "a cartographer", "a night-train conductor", "a bell founder"]
BARE = """
import sys, time, xllamacpp
p = xllamacpp.CommonParams()
p.model.path, p.n_ctx, p.n_parallel, p.kv_unified = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), True
p.port, p.verbosity = 0, -1
server = xllamacpp.Server(p)
print(server.listening_address + "/v1", flush=True)
while True:
    time.sleep(3600)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--levels", default="1,4,8")
    parser.add_argument("--tokens", type=int, default=96)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--parallel", type=int, default=0, help="slots on both servers (default: the top level)")
    args = parser.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    slots = args.parallel or max(levels)

    from simulacra.engine.catalogue import resolve

    path = resolve(args.model)
    ours, ours_url = start_ours(args.model, slots)
    bare, bare_url = start_bare(path, slots)
    try:
        for url in (ours_url, bare_url):  # warm both: first requests pay for page faults and caches
            asyncio.run(batch(url, args.model, 2, 16))
        print(f"{args.model}: {slots} parallel slots on both, {args.tokens} tokens per stream, "
              f"best of {args.repeats}\n")
        print(f"{'clients':>7}  {'ours tok/s':>10}  {'bare tok/s':>10}  {'ratio':>6}")
        for level in levels:
            best = {"ours": 0.0, "bare": 0.0}
            for r in range(args.repeats):
                order = [("ours", ours_url), ("bare", bare_url)]
                for name, url in (order if r % 2 == 0 else order[::-1]):
                    best[name] = max(best[name], asyncio.run(batch(url, args.model, level, args.tokens)))
            ratio = best["ours"] / best["bare"]
            print(f"{level:>7}  {best['ours']:>10.1f}  {best['bare']:>10.1f}  {ratio:>6.2f}"
                  + ("" if ratio >= 0.9 else "  (below 0.9)"), flush=True)
    finally:
        for process in (ours, bare):
            process.terminate()
            process.wait(20)


async def batch(base_url: str, model: str, clients: int, tokens: int) -> float:
    """Aggregate completion tokens/s of ``clients`` concurrent streams."""
    import httpx

    async with httpx.AsyncClient(base_url=base_url, timeout=300) as http:
        start = time.perf_counter()
        counts = await asyncio.gather(*(stream(http, model, TOPICS[i % len(TOPICS)], tokens, i)
                                        for i in range(clients)))
        return sum(counts) / (time.perf_counter() - start)


async def stream(http, model: str, topic: str, tokens: int, i: int) -> int:
    body = {"model": model, "prompt": f"Here is a long story about {topic} (part {i}).\n\nOnce upon a time,",
            "max_tokens": tokens, "temperature": 0, "stream": True, "stream_options": {"include_usage": True}}
    used = 0
    async with http.stream("POST", "/completions", json=body) as r:
        r.raise_for_status()
        async for line in r.aiter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                usage = json.loads(line[6:]).get("usage")
                used = (usage or {}).get("completion_tokens", used)
    if not used:
        raise RuntimeError(f"{http.base_url} sent no usage")
    return used


def start_ours(model: str, slots: int) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "simulacra", "serve", "--model", model, "--port", str(port),
                                "--parallel", str(slots), "--queue-depth", "64", "--log-level", "warning"],
                               env={**os.environ, "SIMULACRA_API_KEY": ""})
    url = f"http://127.0.0.1:{port}/v1"
    wait_ready(url, process)
    return process, url


def start_bare(path: Path, slots: int) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen([sys.executable, "-c", BARE, str(path), str(N_CTX), str(slots)],
                               stdout=subprocess.PIPE, text=True)
    url = process.stdout.readline().strip()
    if not url:
        raise RuntimeError("the bare llama.cpp server did not start")
    wait_ready(url, process)
    return process, url


def wait_ready(url: str, process: subprocess.Popen, timeout: float = 120) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server for {url} exited with {process.returncode}")
        try:
            if httpx.get(url + "/models", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} never became ready")


if __name__ == "__main__":
    main()
