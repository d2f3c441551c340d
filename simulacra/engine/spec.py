"""Model spec strings: one string picks an engine and a model.

    smollm2-135m-instruct         a catalogue name: llama.cpp in-process (the default engine)
    ./x.gguf, /abs/x.gguf         a GGUF file: llama.cpp in-process
    llama:NAME|PATH               the same, explicitly
    torch:NAME|PATH|HF_FOLDER     white-box transformer via PyTorch + our own sampling loop
    ngram:PATH                    a toy n-gram model saved by `simulacra ngram train`
    openai:MODEL@BASE_URL         an OpenAI-compatible server (key from $OPENAI_API_KEY)
    openai:MODEL                  the same, base URL from $OPENAI_BASE_URL
    fake:TEXT                     a scripted engine that always replies TEXT (tests, rehearsal)
"""
from __future__ import annotations

import os

from simulacra.engine.base import Engine
from simulacra.errors import ConfigError

DEFAULT_MODEL = "smollm2-135m-instruct"
KINDS = ("llama", "torch", "ngram", "openai", "fake")


def default_model() -> str:
    return os.environ.get("SIMULACRA_MODEL") or DEFAULT_MODEL


def parse_spec(spec: str) -> tuple[str, str]:
    """Split a spec into (engine kind, rest)."""
    kind, sep, rest = spec.partition(":")
    if sep and kind in KINDS:
        return kind, rest
    if sep and len(kind) > 1 and "/" not in kind and "\\" not in kind:
        raise ConfigError(f"unknown engine '{kind}:' in model spec '{spec}'; use one of "
                          + ", ".join(f"{k}:" for k in KINDS) + " or a catalogue name")
    return "llama", spec


def load_engine(spec: str | None = None, *, n_ctx: int | None = None) -> Engine:
    spec = spec or default_model()
    kind, rest = parse_spec(spec)
    if kind == "fake":
        from simulacra.engine.fake import FakeBackend

        return Engine(FakeBackend([rest or "Hello."]), name=spec)
    if kind == "openai":
        from simulacra.engine.openai import OpenAIBackend

        model, _, base_url = rest.partition("@")
        base_url = base_url or os.environ.get("OPENAI_BASE_URL", "")
        if not base_url:
            raise ConfigError(f"no server for '{spec}': write openai:MODEL@http://host:port/v1 "
                              "or set OPENAI_BASE_URL")
        return Engine(OpenAIBackend(model, base_url, api_key=os.environ.get("OPENAI_API_KEY")), name=spec)
    if kind == "ngram":
        from simulacra.engine.local import LocalBackend
        from simulacra.lm import ngram

        return Engine(LocalBackend(ngram.load(rest)), name=spec)
    from simulacra.engine.catalogue import resolve

    if kind == "torch":
        from simulacra.engine.local import LocalBackend
        from simulacra.lm.transformer import TransformerLM

        return Engine(LocalBackend(TransformerLM.load(resolve(rest, folders_ok=True))), name=spec)
    from simulacra.engine.llamacpp import LlamaCppBackend

    return Engine(LlamaCppBackend(resolve(rest), n_ctx=n_ctx), name=spec)
