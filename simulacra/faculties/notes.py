"""``notes``: static text (a persona, a scenario, an author's note) from config or a file.

``depth: null`` puts the note in the prompt's sections above the conversation; ``depth: N``
asks prompt assembly to insert it N messages before the end of the history (0: right before
the reply), where it steers hardest. ``{name}`` and ``{now}`` are filled in by prompt assembly.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, AsyncIterator, Sequence

from pydantic import Field, model_validator

from simulacra.ems.config import FacultyConfig, read_text
from simulacra.errors import ConfigError
from simulacra.faculties import Faculty
from simulacra.types import Message

if TYPE_CHECKING:
    from simulacra.ems.em import Em


class Config(FacultyConfig):
    text: str | None = None
    file: str | None = Field(None, description="a text file, relative to the em folder")
    depth: int | None = Field(None, ge=0, description="messages before the end of the history; null: top")

    @model_validator(mode="after")
    def _one_source(self):
        if (self.text is None) == (self.file is None):
            raise ValueError("give the note as either 'text:' or 'file:' (exactly one of them)")
        return self


async def run(em: "Em", config: Config, history: Sequence[Message]) -> AsyncIterator[str]:
    text = note_text(em, config)
    if text:
        yield text


def note_text(em: "Em", config: Config) -> str:
    if config.text is not None:
        return config.text.strip()
    path = em.folder / config.file
    if not path.is_file():
        raise ConfigError(f"notes file {path} does not exist; create it or fix 'file:' in "
                          f"{em.folder / 'config.yaml'}")
    return read_text(path).removeprefix("\ufeff").strip()


FACULTY = Faculty("notes", Config, run)
