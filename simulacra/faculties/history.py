"""``history``: a seed conversation from a file (default ``history.txt`` in the em folder).

Messages are yielded newest first: prepend assembly then lays them out oldest first, and a
budget that runs out drops the oldest.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, AsyncIterator, Literal, Sequence

from pydantic import Field

from simulacra.ems.config import FacultyConfig
from simulacra.ems.corpus import LOG_FORMATS, load_log, log_format
from simulacra.errors import ConfigError
from simulacra.faculties import Faculty
from simulacra.types import Message

if TYPE_CHECKING:
    from simulacra.ems.em import Em

DEFAULT_FILE = "history.txt"


class Config(FacultyConfig):
    file: str = Field(DEFAULT_FILE, description="the log, relative to the em folder")
    format: Literal["irc", "colon"] | None = Field(None, description="the file's format; default: the em's "
                                                   "message_history_format if it is a log format, else irc")


async def run(em: "Em", config: Config, history: Sequence[Message]) -> AsyncIterator[str]:
    for text in reversed(seed_messages(em, config)):
        yield text


def seed_messages(em: "Em", config: Config) -> list[str]:
    """The file's messages rendered in the em's format, oldest first."""
    path = em.folder / config.file
    if not path.is_file():
        if "file" in config.model_fields_set:
            raise ConfigError(f"history file {path} does not exist; create it or fix 'file:' in "
                              f"{em.folder / 'config.yaml'}")
        return []  # the default file is optional
    em_format = em.config.message_history_format
    messages = load_log(path, config.format or (em_format if em_format in LOG_FORMATS else "irc"))
    fmt = log_format(em_format)
    return [fmt.render([m]).rstrip("\n") for m in messages]


FACULTY = Faculty("history", Config, run)
