"""Faculties: each yields the items of one prompt section (DESIGN.md §4).

A faculty is ``async run(em, config, history) -> AsyncIterator[str]``: items in priority order,
already rendered as text. It reads; it never calls the engine unless that is its purpose.
Built-ins register through the same entry-point group as plugins: ``simulacra.faculties``,
each entry pointing at a module-level ``FACULTY``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable, Sequence

from simulacra.ems.config import FacultyConfig, validate
from simulacra.errors import ConfigError
from simulacra.types import Message

if TYPE_CHECKING:
    from simulacra.ems.em import Em

log = logging.getLogger(__name__)

# Faculty keys Chapter II ems carry that simulacra accepts and does not act on.
CHAPTER_II_KEYS = frozenset({"ensemble_format", "retriever", "input_format", "format"})

Run = Callable[["Em", FacultyConfig, Sequence[Message]], AsyncIterator[str]]


@dataclass(frozen=True)
class Faculty:
    name: str
    config: type[FacultyConfig]
    run: Run


@cache
def registry() -> dict[str, Faculty]:
    found: dict[str, Faculty] = {}
    for ep in entry_points(group="simulacra.faculties"):
        faculty = ep.load()
        if not isinstance(faculty, Faculty):
            raise ConfigError(f"entry point {ep.name} = {ep.value} is not a simulacra Faculty")
        found[ep.name] = faculty
    return found


def parse_faculty(data: Any, source: Path | str, where: str) -> tuple[Faculty, FacultyConfig]:
    if not isinstance(data, dict) or "faculty" not in data:
        raise ConfigError(f"{source}: {where} needs a 'faculty:' key naming one of: {', '.join(sorted(registry()))}")
    faculties = registry()
    name = data["faculty"]
    if name not in faculties:
        import difflib

        close = difflib.get_close_matches(str(name), list(faculties), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else f"; known: {', '.join(sorted(faculties))}"
        raise ConfigError(f"{source}: {where}: unknown faculty '{name}'{hint}")
    faculty = faculties[name]
    ignored = (CHAPTER_II_KEYS - set(faculty.config.model_fields)) & data.keys()
    if ignored:
        log.info("%s: %s: Chapter II keys not used by simulacra: %s", source, where, ", ".join(sorted(ignored)))
    return faculty, validate(faculty.config, {k: v for k, v in data.items() if k not in ignored}, source, where)
