"""`simulacra models list | pull NAME | path NAME`: the model catalogue from the command line."""
from __future__ import annotations

import typer
from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn,
                           TransferSpeedColumn)
from rich.table import Table

from simulacra.cli.app import app, console

models_app = typer.Typer(help="List, pull and locate models.", no_args_is_help=True)
app.add_typer(models_app, name="models")


@models_app.command("list")
def list_models() -> None:
    """Show the catalogue: built-ins and $SIMULACRA_HOME/catalogue.yaml."""
    from simulacra.engine import catalogue
    from simulacra.engine.spec import default_model

    default = default_model()
    table = Table(box=None, header_style="bold", caption="* default (set SIMULACRA_MODEL to change)",
                  caption_justify="left")
    for column in ("name", "kind", "size", "licence", "installed"):
        table.add_column(column, justify="right" if column == "size" else "left", no_wrap=True)
    for entry in catalogue.entries():
        name = entry.name + (" *" if entry.name == default else "")
        installed = "yes" if catalogue.is_installed(entry.name) else "no"
        table.add_row(name, entry.kind, human_size(entry.size), entry.licence, installed)
    console.out.print(table)


@models_app.command()
def pull(
    name: str = typer.Argument(..., help="A catalogue name (see `simulacra models list`)."),
    verify: bool = typer.Option(False, "--verify", help="Re-hash an installed copy; fetch again if bad."),
) -> None:
    """Fetch a model into $SIMULACRA_HOME/models, verify its sha256 and print its path."""
    from simulacra.engine import catalogue

    entry = catalogue.get(name)
    if catalogue.is_installed(name) and not verify:
        console.write(f"{catalogue.model_path(name)}\n")
        return
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
               TransferSpeedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console.stderr, transient=True) as bar:
        task = bar.add_task(entry.name, total=entry.size)

        def progress(done: int, total: int | None, what: str) -> None:
            bar.update(task, completed=done, total=total, description=f"{entry.name}: {what}")

        path = catalogue.pull(name, progress=progress, verify=verify)
    console.write(f"{path}\n")


@models_app.command()
def path(name: str = typer.Argument(..., help="A catalogue name.")) -> None:
    """Print where a pulled model is (an error if it is not pulled yet)."""
    from simulacra.engine import catalogue

    console.write(f"{catalogue.resolve(catalogue.get(name).name, folders_ok=True)}\n")


def human_size(size: int | None) -> str:
    if size is None:
        return "?"
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return ""
