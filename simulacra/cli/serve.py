"""`simulacra serve [EM...]`: an OpenAI-compatible HTTP API for ems and models."""
from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Optional

import typer

from simulacra.cli.app import app, console
from simulacra.errors import ConfigError

KEY_ENV = "SIMULACRA_API_KEY"


@app.command()
def serve(
    ems: Optional[list[Path]] = typer.Argument(None, help="em folders to serve (model id = the em's name)"),
    host: str = typer.Option("127.0.0.1", "--host", help="address to listen on"),
    port: int = typer.Option(8000, "--port", "-p"),
    api_key: list[str] = typer.Option([], "--api-key", help=f"accepted bearer key (repeatable; or ${KEY_ENV}, "
                                                            "comma-separated)"),
    model: list[str] = typer.Option([], "--model", "-m", help="a model spec to serve as is (repeatable)"),
    parallel: int = typer.Option(1, "--parallel", help="requests decoded at once per model (llama.cpp slots)"),
    queue_depth: int = typer.Option(16, "--queue-depth", help="requests one key may have waiting per model; "
                                                              "more get 429"),
    max_body: int = typer.Option(1_000_000, "--max-body", help="largest request body in bytes (larger: 413)"),
    any_model: bool = typer.Option(False, "--any-model", help="serve any model spec a client names (trusted "
                                                              "clients only: specs name files and URLs)"),
    insecure_no_key: bool = typer.Option(False, "--insecure-no-key", help="allow a non-loopback --host "
                                                                          "without an API key"),
    log_level: str = typer.Option("info", "--log-level"),
) -> None:
    """Serve ems and models over the OpenAI API: /v1/models, /v1/chat/completions, /v1/completions."""
    from simulacra.errors import require

    uvicorn = require("uvicorn", "serve")
    from simulacra.serve.app import create_app

    keys = list(api_key) or [k.strip() for k in os.environ.get(KEY_ENV, "").split(",") if k.strip()]
    if not keys and not loopback(host) and not insecure_no_key:
        raise ConfigError(f"refusing to serve on {host} without an API key: pass --api-key KEY (or set "
                          f"{KEY_ENV}), listen on 127.0.0.1, or pass --insecure-no-key")
    if parallel < 1 or queue_depth < 0 or max_body < 1:
        raise ConfigError("--parallel and --max-body must be at least 1, --queue-depth at least 0")
    server = create_app(ems or [], model, api_keys=keys, parallel=parallel, queue_depth=queue_depth,
                        max_body=max_body, any_model=any_model)
    registry = server.state.models
    registry.preload()  # a model that cannot load fails here, as one line, not in the server's log
    names = ", ".join(c["id"] for c in registry.cards()) or "nothing yet"
    console.stderr.print(f"serving {names} on http://{_url_host(host)}:{port}/v1"
                         + ("" if keys else " (no API key)"))
    uvicorn.run(server, host=host, port=port, log_level=log_level)


def loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host
