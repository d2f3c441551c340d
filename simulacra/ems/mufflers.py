"""Mufflers: small filters that reject a drafted message (Chapter II's name).

A muffler is ``(message, prompt_text, **options) -> reason | None``. Built-ins register through the
entry-point group ``simulacra.mufflers`` like faculties do. In config.yaml a muffler is a name
(``has_url``) or a mapping with options (``{muffler: regex, pattern: "(?i)as an ai"}``).
"""
from __future__ import annotations

import logging
import re
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Callable

from simulacra.errors import ConfigError
from simulacra.types import Message

Muffler = Callable[..., "str | None"]

log = logging.getLogger(__name__)

# Chapter II mufflers for its own deployments; a Chapter II config naming them still loads.
CHAPTER_II_ONLY = frozenset({"has_pump_fun_ca", "has_img_url_token", "context_sentence_repetition"})

_URL = re.compile(r"https?://|www\.\w", re.I)


def has_url(message: Message, prompt: str) -> str | None:
    return "contains a URL" if _URL.search(message.content) else None


def too_short(message: Message, prompt: str, min_chars: int = 2) -> str | None:
    return f"shorter than {min_chars} characters" if len(message.content.strip()) < min_chars else None


def repeats_prompt(message: Message, prompt: str, min_chars: int = 24) -> str | None:
    """A long verbatim copy of something already in the prompt is a loop, not a reply."""
    text = message.content.strip()
    return "repeats the prompt verbatim" if len(text) >= min_chars and text in prompt else None


def regex(message: Message, prompt: str, pattern: str = "") -> str | None:
    return f"matches /{pattern}/" if pattern and re.search(pattern, message.content) else None


@cache
def registry() -> dict[str, Muffler]:
    return {ep.name: ep.load() for ep in entry_points(group="simulacra.mufflers")}


def parse_mufflers(specs: list[str | dict[str, Any]], source: Path | str) -> list[Callable[[Message, str], str | None]]:
    """Turn config entries into ready filters; unknown names and bad options are ConfigErrors."""
    known, out = registry(), []
    for i, spec in enumerate(specs):
        options = dict(spec) if isinstance(spec, dict) else {"muffler": spec}
        name = options.pop("muffler", None)
        if name in CHAPTER_II_ONLY:
            log.info("%s: mufflers[%d]: Chapter II's '%s' is not part of simulacra; skipped", source, i, name)
            continue
        if name not in known:
            raise ConfigError(f"{source}: mufflers[{i}]: unknown muffler '{name}'; known: {', '.join(sorted(known))}")
        if name == "regex":
            try:
                re.compile(options.get("pattern", ""))
            except re.error as e:
                raise ConfigError(f"{source}: mufflers[{i}]: bad regex: {e}") from None
        out.append(_bind(known[name], options, f"{source}: mufflers[{i}]"))
    return out


def _bind(muffler: Muffler, options: dict, where: str) -> Callable[[Message, str], str | None]:
    import inspect

    allowed = set(inspect.signature(muffler).parameters) - {"message", "prompt"}
    unknown = set(options) - allowed
    if unknown:
        raise ConfigError(f"{where}: unknown option(s) {', '.join(sorted(unknown))}; "
                          f"this muffler takes: {', '.join(sorted(allowed)) or 'none'}")
    return lambda message, prompt: muffler(message, prompt, **options)
