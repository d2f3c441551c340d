"""Measurements of the local engine against Hugging Face ``generate`` on the same weights.

Both are greedy and run exactly ``n_tokens`` (the end-of-text token is suppressed on both sides),
in the same process, so a ratio of the two is meaningful on a noisy machine. ``tokens_per_s`` is
the decode rate after the first token; ``ttft_s`` the time to the first token (the prompt's
forward pass). ``bench/engine.py`` drives these; running this file prints one comparison.
"""
from __future__ import annotations

import asyncio
import statistics
import sys
import time
from functools import lru_cache
from pathlib import Path

from simulacra.engine.local import LocalBackend
from simulacra.lm.transformer import TransformerLM, _converted
from simulacra.types import Sampling

DEFAULT_PROMPT = "The history of the city of Rome begins"


@lru_cache(maxsize=2)
def _ours(path: str) -> TransformerLM:
    return TransformerLM.load(path)


@lru_cache(maxsize=2)
def _stock_hf(path: str):
    """The same float32 weights loaded by transformers as it ships (no relayout)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    p = Path(path)
    folder = _converted(p) if p.is_file() else p
    return AutoModelForCausalLM.from_pretrained(folder, dtype="float32").eval(), AutoTokenizer.from_pretrained(folder)


def _now() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _rates(times: list[tuple[float, float]], start: tuple[float, float]) -> dict:
    """Wall-clock rates, and the same per CPU second of this process: on a shared machine the
    CPU figure moves less with other people's load (with one torch thread it is the work done)."""
    n = len(times)
    (w0, c0), (w1, c1) = times[0], times[-1]
    return {"tokens_per_s": (n - 1) / (w1 - w0) if n > 1 else 0.0,
            "tokens_per_cpu_s": (n - 1) / (c1 - c0) if n > 1 and c1 > c0 else 0.0,
            "ttft_s": w0 - start[0], "total_s": w1 - start[0], "tokens": n}


def bench_local(path: str, prompt: str = DEFAULT_PROMPT, n_tokens: int = 64, *, threads: int | None = None) -> dict:
    """Our LocalBackend, greedy, from a cold cache."""
    _threads(threads)
    lm = _ours(str(path))
    backend = LocalBackend(lm)
    sampling = Sampling(temperature=0.0, max_tokens=n_tokens, logit_bias={e: float("-inf") for e in lm.eos_ids})

    async def run() -> list[tuple[float, float]]:
        times = []
        async for chunk in backend.complete(prompt, sampling):
            if chunk.tokens:
                times.append(_now())
        return times

    start = _now()
    return _rates(asyncio.run(run()), start)


def bench_hf_generate(path: str, prompt: str = DEFAULT_PROMPT, n_tokens: int = 64, *,
                      threads: int | None = None, same_model: bool = False) -> dict:
    """``model.generate(do_sample=False)``; ``same_model`` runs it on our relayouted model instead
    of a stock load, to separate what the weight layout buys from what the loop buys."""
    import torch

    _threads(threads)
    if same_model:
        lm = _ours(str(path))
        model, tokenizer = lm.model, lm.tokenizer
    else:
        model, tokenizer = _stock_hf(str(path))
    ids = torch.tensor([tokenizer.encode(prompt)])
    times: list[tuple[float, float]] = []

    class Clock:  # a streamer: generate calls put() with the prompt, then once per new token
        def __init__(self):
            self.prompt_seen = False

        def put(self, value):
            if self.prompt_seen:
                times.append(_now())
            self.prompt_seen = True

        def end(self):
            pass

    start = _now()
    model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=n_tokens, min_new_tokens=n_tokens,
                   do_sample=False, streamer=Clock(), pad_token_id=tokenizer.eos_token_id)
    return _rates(times, start)


def compare(path: str, prompt: str = DEFAULT_PROMPT, n_tokens: int = 64, rounds: int = 5,
            threads: int | None = None) -> dict:
    """Interleaved rounds (the machine's load drifts); medians of each and the ratio of medians."""
    bench_local(path, prompt, 4, threads=threads), bench_hf_generate(path, prompt, 4, threads=threads)  # warm up
    runs: dict[str, list[dict]] = {"ours": [], "hf": [], "hf_same_model": []}
    for _ in range(rounds):
        runs["ours"].append(bench_local(path, prompt, n_tokens, threads=threads))
        runs["hf"].append(bench_hf_generate(path, prompt, n_tokens, threads=threads))
        runs["hf_same_model"].append(bench_hf_generate(path, prompt, n_tokens, threads=threads, same_model=True))
    out = {k: {m: statistics.median(r[m] for r in v) for m in ("tokens_per_s", "tokens_per_cpu_s", "ttft_s")} for k, v in runs.items()}
    out["ratio"] = out["ours"]["tokens_per_s"] / out["hf"]["tokens_per_s"]
    out["ratio_same_model"] = out["ours"]["tokens_per_s"] / out["hf_same_model"]["tokens_per_s"]
    out["cpu_ratio"] = out["ours"]["tokens_per_cpu_s"] / out["hf"]["tokens_per_cpu_s"]
    out["cpu_ratio_same_model"] = out["ours"]["tokens_per_cpu_s"] / out["hf_same_model"]["tokens_per_cpu_s"]
    return out


def _threads(threads: int | None) -> None:
    if threads:
        import torch

        torch.set_num_threads(threads)


if __name__ == "__main__":  # python bench/engine_local.py [MODEL_PATH_OR_NAME] [THREADS]
    arg = sys.argv[1] if len(sys.argv) > 1 else "smollm2-135m-instruct"
    if not Path(arg).exists():
        from simulacra.engine.catalogue import resolve

        arg = str(resolve(arg))
    result = compare(arg, threads=int(sys.argv[2]) if len(sys.argv) > 2 else None)
    for k, v in result.items():
        print(k, v)
