"""Layer 7: the OpenAI-compatible HTTP API (``simulacra serve``). FastAPI is imported only when an
app is built, so ``import simulacra.serve`` stays light."""
from __future__ import annotations


def create_app(*args, **kwargs):
    """See simulacra.serve.app.create_app."""
    from simulacra.serve.app import create_app as build

    return build(*args, **kwargs)


__all__ = ["create_app"]
