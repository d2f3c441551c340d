"""The typer app shared by every command module, and the CLI's output helpers."""
from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.text import Text

app = typer.Typer(
    help="Cultivate language-model characters: models, completion, chat, ems.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root() -> None:
    """Cultivate language-model characters: models, completion, chat, ems."""


class _Console:
    """stdout for results, stderr for progress and errors (so pipes stay clean)."""

    def __init__(self):
        self.out = Console(highlight=False, soft_wrap=True)
        self.stderr = Console(stderr=True, highlight=False, soft_wrap=True)

    def err(self, text: str) -> None:
        self.stderr.print(Text.assemble(("error: ", "bold red"), text))

    def note(self, text: str) -> None:
        """A status line on stderr; brackets in it are text, not rich markup."""
        self.stderr.print(text, markup=False, highlight=False)

    def write(self, text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()


console = _Console()
