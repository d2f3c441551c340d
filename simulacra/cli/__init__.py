"""The `simulacra` command. Each topic lives in its own module and registers on ``app``."""
from __future__ import annotations

import importlib
import sys

from simulacra.cli.app import app, console  # noqa: F401

# Importing a module registers its commands on `app`.
COMMAND_MODULES = ["complete", "models", "ngram"]


def main() -> None:
    from simulacra.errors import SimulacraError

    for name in COMMAND_MODULES:
        importlib.import_module(f"simulacra.cli.{name}")
    try:
        app(standalone_mode=False)
    except SimulacraError as e:
        console.err(str(e))
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as e:  # click's own usage errors
        import click

        if isinstance(e, click.exceptions.Exit):
            sys.exit(e.exit_code)
        if isinstance(e, click.ClickException):
            e.show()
            sys.exit(e.exit_code)
        if isinstance(e, click.exceptions.Abort):
            sys.exit(130)
        raise
