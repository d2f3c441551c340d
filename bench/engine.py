"""Engine throughput in one run, same prompt, greedy (issue: the stack).

1. the white-box `local` engine vs Hugging Face `generate` on the same weights (goal >= 1.3x);
2. the llama.cpp engine (through simulacra's Engine) vs raw xllamacpp (goal >= 0.95x);
with time to first token for each. Ratios are measured in the same process because this machine
is noisy; absolute numbers move with whatever else runs.
"""
from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import engine_llama  # noqa: E402
import engine_local  # noqa: E402

from simulacra.engine.catalogue import resolve  # noqa: E402


def line(name: str, r: dict) -> str:
    return f"  {name:<22} {r['tokens_per_s']:7.1f} tokens/s   ttft {r['ttft_s'] * 1000:7.1f} ms"


def main() -> None:
    path = str(resolve(sys.argv[1] if len(sys.argv) > 1 else "smollm2-135m-instruct"))
    print(f"model: {Path(path).name}")

    local = engine_local.compare(path, n_tokens=64, rounds=3)
    print("white-box local engine vs transformers generate (64 tokens, median of 3):")
    print(line("simulacra local", local["ours"]))
    print(line("HF generate", local["hf"]))
    print(f"  ratio {local['ratio']:.2f}x  (goal >= 1.3x; CPU-time ratio {local['cpu_ratio']:.2f}x)")

    from simulacra.engine.base import Engine
    from simulacra.engine.llamacpp import LlamaCppBackend

    engine, server = Engine(LlamaCppBackend(path)), engine_llama._raw_server(path)
    ours, raw = [], []
    for _ in range(4):  # alternate; the first pair warms both up
        ours.append(engine_llama._engine_run(engine, engine_llama.PROMPT, 128))
        raw.append(engine_llama._raw_run(server, engine_llama.PROMPT, 128))
    ours_best, raw_best = engine_llama._best(ours[1:]), engine_llama._best(raw[1:])
    print("llama.cpp engine vs raw xllamacpp (128 tokens, best of 3):")
    print(line("simulacra llama.cpp", ours_best))
    print(line("raw xllamacpp", raw_best))
    print(f"  ratio {ours_best['tokens_per_s'] / raw_best['tokens_per_s']:.2f}x  (goal >= 0.95x)")
    asyncio.run(engine.aclose())


if __name__ == "__main__":
    main()
