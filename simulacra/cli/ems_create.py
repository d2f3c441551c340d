"""Creating ems: `simulacra new`, `import-card`, `export-card`, `import-play`."""
from __future__ import annotations

from pathlib import Path

import typer

from simulacra.cli.app import app, console

DIR_HELP = "The folder to create the em in (the em is a folder inside it)."


@app.command()
def new(
    name: str = typer.Argument(..., help="The em's name; a folder of that name is created."),
    directory: Path = typer.Option(Path("."), "--dir", "-d", help=DIR_HELP),
) -> None:
    """Create a new em folder: a commented config.yaml, a persona, a corpus and a seed history."""
    from simulacra.ems.scaffold import new_em

    _created(new_em(name, directory))


@app.command("import-card")
def import_card(
    card: Path = typer.Argument(..., help="A SillyTavern character card: .json (V1/V2/V3), .png or .charx."),
    directory: Path = typer.Option(Path("."), "--dir", "-d", help=DIR_HELP),
) -> None:
    """Turn a character card into an em folder (fields it cannot hold are kept in card.yaml)."""
    from simulacra.ems.cards import import_card as run

    _created(run(card, directory))


@app.command("export-card")
def export_card(
    em: Path = typer.Argument(..., help="The em folder."),
    output: Path = typer.Option(None, "--output", "-o", help="The card file to write; default: NAME.json "
                                "(or NAME.png) in the current folder. A .png name writes a PNG."),
    as_png: bool = typer.Option(False, "--png", help="Write a PNG card (the em's card.png, or a 1x1 image)."),
) -> None:
    """Write an em as a SillyTavern V2 character card."""
    from simulacra.ems.cards import export_card as run

    console.out.print(f"wrote {run(em, output, as_png)}")


@app.command("import-play")
def import_play(
    play: str = typer.Argument(..., help="A Shakespeare play by short name: hamlet, macbeth, romeo, lear..."),
    character: str = typer.Argument(..., help="The character who becomes the em, e.g. Hamlet."),
    directory: Path = typer.Option(Path("."), "--dir", "-d", help=DIR_HELP),
) -> None:
    """Create an em from one character's scenes in a Shakespeare play (public domain texts)."""
    from simulacra.ems.play import import_play as run

    _created(run(play, character, directory))


def _created(folder: Path) -> None:
    console.out.print(f"created {folder}\nchat with it:  simulacra chat {folder}")
