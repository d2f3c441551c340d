"""`simulacra complete`: stream a continuation of a prompt from any model spec."""
from __future__ import annotations

import asyncio
import json
from typing import Optional

import typer

from simulacra.cli.app import app, console
from simulacra.errors import InputError
from simulacra.storage import read_text_file
from simulacra.types import Sampling

MODEL_HELP = "model spec: a catalogue name, ./file.gguf, torch:..., ngram:FILE, openai:MODEL@URL, fake:TEXT"


def read_text_arg(value: str) -> str:
    """A literal, or @path to read a UTF-8 file, or - for stdin."""
    if value == "-" or value.startswith("@"):
        return read_text_file(value.removeprefix("@") if value != "-" else value)
    return value


def sampling_options(temperature: float, top_p: float, top_k: int, min_p: float, max_tokens: int,
                     stop: list[str], seed: Optional[int], n: int = 1, logprobs: Optional[int] = None) -> Sampling:
    if max_tokens < 1:
        raise InputError("--max-tokens must be at least 1")
    if n < 1:
        raise InputError("--n must be at least 1")
    return Sampling(temperature=temperature, top_p=top_p, top_k=top_k, min_p=min_p, max_tokens=max_tokens,
                    stop=tuple(s.encode().decode("unicode_escape") for s in stop), seed=seed, n=n,
                    logprobs=logprobs)


@app.command()
def complete(
    prompt: str = typer.Argument(..., help="the prompt text, @FILE to read a file, or - for stdin"),
    model: Optional[str] = typer.Option(None, "--model", "-m", help=MODEL_HELP),
    temperature: float = typer.Option(0.8, "--temperature", "-t"),
    top_p: float = typer.Option(1.0, "--top-p"),
    top_k: int = typer.Option(0, "--top-k"),
    min_p: float = typer.Option(0.05, "--min-p"),
    max_tokens: int = typer.Option(128, "--max-tokens"),
    stop: list[str] = typer.Option([], "--stop", help="stop sequence (repeatable; \\n escapes allowed)"),
    seed: Optional[int] = typer.Option(None, "--seed"),
    n: int = typer.Option(1, "--n", help="number of samples"),
    logprobs: Optional[int] = typer.Option(None, "--logprobs", help="with --json: top-k logprobs per token"),
    as_json: bool = typer.Option(False, "--json", help="print an OpenAI-style completion object"),
) -> None:
    """Continue PROMPT with a language model, streaming the text."""
    from simulacra.engine import load_engine

    text = read_text_arg(prompt)
    sampling = sampling_options(temperature, top_p, top_k, min_p, max_tokens, stop, seed, n, logprobs)
    engine = load_engine(model)
    if as_json:
        console.write(json.dumps(asyncio.run(_completion_object(engine, text, sampling)), indent=2) + "\n")
    else:
        asyncio.run(_stream(engine, text, sampling))


async def _stream(engine, prompt: str, sampling: Sampling) -> None:
    """Samples stream one after another; with --n > 1 a line --- separates them."""
    try:
        async for chunk in engine.complete(prompt, sampling):
            console.write(chunk.text)
            if chunk.finish_reason is not None:
                console.write("\n" if chunk.index == sampling.n - 1 else "\n---\n")
    finally:
        await engine.aclose()


async def _completion_object(engine, prompt: str, sampling: Sampling) -> dict:
    import time

    choices: dict[int, dict] = {}
    usage = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    try:
        async for chunk in engine.complete(prompt, sampling):
            choice = choices.setdefault(chunk.index, {"index": chunk.index, "text": "", "finish_reason": None,
                                                      "logprobs": None})
            choice["text"] += chunk.text
            if chunk.logprobs:
                lp = choice["logprobs"] or {"tokens": [], "token_logprobs": [], "top_logprobs": []}
                for t in chunk.logprobs:
                    lp["tokens"].append(t.token)
                    lp["token_logprobs"].append(t.logprob)
                    lp["top_logprobs"].append(dict(t.top))
                choice["logprobs"] = lp
            if chunk.finish_reason:
                choice["finish_reason"] = chunk.finish_reason
                usage["prompt_tokens"] = chunk.usage["prompt_tokens"]  # same prompt for every sample
                usage["completion_tokens"] += chunk.usage["completion_tokens"]
    finally:
        await engine.aclose()
    usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    return {"id": f"cmpl-{int(time.time() * 1000)}", "object": "text_completion", "created": int(time.time()),
            "model": engine.name, "choices": [choices[i] for i in sorted(choices)], "usage": usage}
