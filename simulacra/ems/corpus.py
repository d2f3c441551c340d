"""An em's character corpus (``<em>/<name>.chr/*.txt``) cut into retrievable chunks, and chat logs.

A corpus file is plain text with an optional YAML header fenced by ``%%%`` lines at the very
top (``format: irc|colon|prose``, ``title``, anything else is kept as metadata), and sections
split by a line ``---``. Chat logs (``irc``: ``<name> text``, ``colon``: ``Name: text``) are
parsed into messages; a line without a speaker prefix continues the message above it. Chunks
never cross a section:

- ``chunk_by="lines"``: logs give ``chunk_size`` messages per chunk (3, like Chapter II); prose
  gives one chunk per paragraph (lines separated by a blank line).
- ``chunk_by="section"``: one chunk per section.

A file without a ``format`` is a log when every line of it reads as one format, else prose.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, Sequence

import yaml

from simulacra.chat.formats import get_format
from simulacra.ems.config import read_text
from simulacra.errors import ConfigError
from simulacra.types import Message

FENCE = "%%%"
BREAK = "---"
LOG_FORMATS = ("irc", "colon")
FORMATS = LOG_FORMATS + ("prose",)
ChunkBy = Literal["lines", "section"]


@dataclass(frozen=True)
class CorpusChunk:
    text: str  # as it will appear in the prompt
    source: Path
    line: int  # 1-based line of the chunk's first line in ``source``
    messages: tuple[Message, ...] = ()  # empty for prose
    hash: str = field(default="", compare=False)

    def __post_init__(self):
        if not self.hash:
            object.__setattr__(self, "hash", content_hash(self.text))


@dataclass(frozen=True)
class Section:
    line: int  # 1-based line of the section's first line
    lines: tuple[str, ...]


@dataclass(frozen=True)
class CorpusFile:
    path: Path
    meta: dict[str, Any]
    sections: tuple[Section, ...]

    @property
    def format(self) -> str:
        return self.meta.get("format") or detect_format(self.sections)


def log_format(name: str):
    """The text format for ``name``, or IRC when ``name`` is not a log format (e.g. ``chat``,
    which needs a model's template): faculties render messages for reading and matching."""
    return get_format(name if name in LOG_FORMATS else "irc")


def message_texts(format_name: str, messages: Sequence[Message]) -> list[str]:
    """One text per message as the em's format shows it; a thought (no text form) as its content."""
    fmt = log_format(format_name)
    return [m.content if m.kind == "thought" else fmt.render([m]).rstrip("\n") for m in messages]


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def load_corpus(folder: str | Path, *, chunk_size: int = 3, chunk_by: ChunkBy = "lines",
                render_format: str | None = None) -> list[CorpusChunk]:
    """Every ``*.txt`` in ``folder`` (sorted by name), chunked. A missing folder has no chunks.

    ``render_format`` re-renders log chunks in that format (e.g. the em's history format) so they
    read like the conversation; None keeps each file's own lines verbatim.
    """
    folder = Path(folder)
    if chunk_size < 1:
        raise ConfigError(f"chunk_size must be 1 or more (got {chunk_size})")
    if not folder.is_dir():
        return []
    chunks: list[CorpusChunk] = []
    for path in sorted(folder.glob("*.txt")):
        chunks += chunk_file(read_corpus_file(path), chunk_size=chunk_size, chunk_by=chunk_by,
                             render_format=render_format)
    return chunks


def read_corpus_file(path: str | Path) -> CorpusFile:
    path = Path(path)
    lines = read_text(path).removeprefix("\ufeff").splitlines()
    meta, body_start = _header(path, lines)
    fmt = meta.get("format")
    if fmt is not None and fmt not in FORMATS:
        raise ConfigError(f"{path}:{_header_line(lines, 'format')}: unknown format '{fmt}'; "
                          f"use one of: {', '.join(FORMATS)}")
    return CorpusFile(path, meta, tuple(_sections(lines, body_start)))


def chunk_file(file: CorpusFile, *, chunk_size: int = 3, chunk_by: ChunkBy = "lines",
               render_format: str | None = None) -> list[CorpusChunk]:
    if chunk_by not in ("lines", "section"):
        raise ConfigError(f"chunk_by must be 'lines' or 'section' (got {chunk_by!r})")
    fmt = file.format
    chunks: list[CorpusChunk] = []
    for section in file.sections:
        if fmt == "prose":
            groups = [section] if chunk_by == "section" else _paragraphs(section)
            chunks += [CorpusChunk(_text(g.lines), file.path, g.line) for g in groups]
            continue
        parsed = _parse_log(file.path, section, fmt)
        size = len(parsed) if chunk_by == "section" else chunk_size
        for i in range(0, len(parsed), size):
            group = parsed[i:i + size]
            messages = tuple(m for _, m, _ in group)
            if render_format and log_format(render_format).name != fmt:
                text = log_format(render_format).render(messages).rstrip("\n")
            else:
                text = "\n".join("\n".join(raw) for _, _, raw in group)
            chunks.append(CorpusChunk(text, file.path, group[0][0], messages))
    return chunks


def load_log(path: str | Path, format: str = "irc") -> list[Message]:
    """A chat log file (e.g. an em's history.txt) as messages, oldest first.

    Logs use the chat grammar of ``simulacra.chat.formats``: there a ``---`` section holds one
    multi-line message, where in a corpus file it separates chunks.
    """
    path = Path(path)
    lines = read_text(path).removeprefix("\ufeff").splitlines()
    meta, start = _header(path, lines)
    fmt = meta.get("format") or format
    if fmt not in LOG_FORMATS:
        raise ConfigError(f"{path}: cannot read a chat log in format '{fmt}'; "
                          f"use one of: {', '.join(LOG_FORMATS)}")
    parser = get_format(fmt)
    first = next((i for i in range(start, len(lines)) if lines[i].strip()), None)
    if first is not None and lines[first].strip() != BREAK and not parser.parse(lines[first]):
        raise ConfigError(f"{path}:{first + 1}: expected a {fmt} message like "
                          f"'{parser.prefix('name')} text'; a log starts with a message")
    return parser.parse("\n".join(lines[start:]))


def detect_format(sections: tuple[Section, ...]) -> str:
    lines = [ln for s in sections for ln in s.lines if ln.strip()]
    for fmt in LOG_FORMATS:
        if lines and all(get_format(fmt).parse(ln) for ln in lines):
            return fmt
    return "prose"


def _header(path: Path, lines: list[str]) -> tuple[dict[str, Any], int]:
    """The header's metadata and the index of the first body line."""
    if not lines or lines[0].strip() != FENCE:
        return {}, 0
    end = next((i for i in range(1, len(lines)) if lines[i].strip() == FENCE), None)
    if end is None:
        raise ConfigError(f"{path}:1: header opened with {FENCE} is never closed; "
                          f"add a line {FENCE} after the header")
    try:
        meta = yaml.safe_load("\n".join(lines[1:end]))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = 2 + (mark.line if mark else 0)
        problem = getattr(e, "problem", None) or "invalid YAML"
        raise ConfigError(f"{path}:{line}: bad header: {problem}; check indentation and quoting") from None
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise ConfigError(f"{path}:2: the header must be 'key: value' lines (a YAML mapping)")
    return meta, end + 1


def _header_line(lines: list[str], key: str) -> int:
    return next((i + 1 for i, ln in enumerate(lines) if ln.lstrip().startswith(f"{key}:")), 1)


def _sections(lines: list[str], start: int) -> list[Section]:
    """Split on lines ``---``; blank lines around a section are trimmed, empty sections dropped."""
    sections, current, first = [], [], start
    for i in range(start, len(lines) + 1):
        if i == len(lines) or lines[i].strip() == BREAK:
            sections.append(_trim(first, current))
            current, first = [], i + 1
        else:
            current.append(lines[i])
    return [s for s in sections if s.lines]


def _trim(index: int, lines: list[str]) -> Section:
    lead = next((k for k, ln in enumerate(lines) if ln.strip()), len(lines))
    tail = len(lines) - next((k for k, ln in enumerate(reversed(lines)) if ln.strip()), len(lines))
    return Section(index + lead + 1, tuple(ln.rstrip() for ln in lines[lead:tail]))


def _paragraphs(section: Section) -> list[Section]:
    out, current, first = [], [], section.line
    for offset, line in enumerate(section.lines + ("",)):
        if line.strip():
            if not current:
                first = section.line + offset
            current.append(line)
        elif current:
            out.append(Section(first, tuple(current)))
            current = []
    return out


def _parse_log(path: Path, section: Section, fmt: str) -> list[tuple[int, Message, list[str]]]:
    """(line, message, raw lines) per message; a line without a prefix continues the one above."""
    parser = get_format(fmt)
    out: list[tuple[int, Message, list[str]]] = []
    for offset, line in enumerate(section.lines):
        number = section.line + offset
        found = parser.parse(line)  # one line: a message if it starts with a prefix, else nothing
        if found:
            out.append((number, found[0], [line]))
        elif out:
            first, prev, raw = out[-1]
            out[-1] = (first, replace(prev, content=f"{prev.content}\n{line}"), raw + [line])
        else:
            raise ConfigError(f"{path}:{number}: expected a {fmt} message like "
                              f"'{parser.prefix('name')} text'; fix the line or set 'format: prose' "
                              f"in a {FENCE} header")
    # blank lines between messages belong to neither
    return [(n, replace(m, content=m.content.rstrip()), _strip_blank(raw)) for n, m, raw in out]


def _strip_blank(lines: list[str]) -> list[str]:
    while lines and not lines[-1].strip():
        lines = lines[:-1]
    return lines


def _text(lines: tuple[str, ...]) -> str:
    return "\n".join(lines)

