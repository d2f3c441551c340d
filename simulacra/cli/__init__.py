"""The `simulacra` command. Each topic lives in its own module and registers on ``app``."""
from __future__ import annotations

import importlib
import sys

from simulacra.cli.app import app, console  # noqa: F401

# Importing a module registers its commands on `app`.
COMMAND_MODULES = ["complete", "chat", "ems", "agent", "ems_create", "models", "ngram", "memory", "serve", "scene", "discord"]


def main() -> None:
    from simulacra.errors import SimulacraError

    for name in COMMAND_MODULES:
        importlib.import_module(f"simulacra.cli.{name}")
    try:
        app()  # standalone: click reports its own usage errors and exits
    except SimulacraError as e:
        console.err(str(e))
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
