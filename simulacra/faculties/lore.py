"""``lore``: keyword-triggered entries with SillyTavern World Info semantics, from ``lore.yaml``.

    # lore.yaml
    entries:
      - name: The drowned bell        # a label for people; never sent to the model
        keys: [bell, belfry]          # any one activates the entry; "/regex/i" keys work too
        secondary_keys: [harbour]     # optional, combined with the keys by `logic`
        logic: and_any                # and_any | and_all | not_any | not_all
        content: The harbour bell rings by itself before a storm.
        order: 100                    # higher: placed nearer the conversation, wins the budget
        constant: false               # true: always in (keys not needed)
        enabled: true
        case_sensitive: null          # null: the faculty's setting
        match_whole_words: null
        scan_depth: null              # how many recent messages to scan; null: the faculty's
        exclude_recursion: false      # only the conversation itself can activate it
        prevent_recursion: false      # its content activates no other entry

Activation follows SillyTavern: a key found in the last ``scan_depth`` messages activates an
entry, subject to its secondary keys (``and_any``: one of them too, ``and_all``: all of them,
``not_any``: none of them, ``not_all``: not all of them); constant entries are always in; the
content of activated entries is scanned for further keys, up to ``max_recursion`` rounds. The
token budget (``max_tokens``) goes first to constant entries, then to higher ``order``, direct
mentions before recursive ones, and closes at the first entry that does not fit. Items are
yielded highest ``order`` first, so prepend assembly puts them nearest the conversation.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, AsyncIterator, Callable, Literal, Sequence

from pydantic import Field, field_validator

from simulacra.ems.config import FacultyConfig, Strict, read_yaml, validate
from simulacra.ems.corpus import message_texts
from simulacra.errors import ConfigError
from simulacra.faculties import Faculty
from simulacra.types import Message

if TYPE_CHECKING:
    from simulacra.ems.em import Em

DEFAULT_FILE = "lore.yaml"
Logic = Literal["and_any", "and_all", "not_any", "not_all"]


class Config(FacultyConfig):
    file: str = Field(DEFAULT_FILE, description="the lore file, relative to the em folder")
    scan_depth: int | None = Field(None, ge=0, description="messages scanned; default: recent_message_attention")
    case_sensitive: bool = False
    match_whole_words: bool = False
    recursive: bool = True
    max_recursion: int = Field(3, ge=0, description="rounds of entries activating entries")


class Entry(Strict):
    name: str = ""
    keys: list[str] = []
    secondary_keys: list[str] = []
    logic: Logic = "and_any"
    content: str = ""  # checked at load: a default lets a misspelt key be reported as such
    order: int = 100
    constant: bool = False
    enabled: bool = True
    case_sensitive: bool | None = None
    match_whole_words: bool | None = None
    scan_depth: int | None = Field(None, ge=0)
    exclude_recursion: bool = False
    prevent_recursion: bool = False

    @field_validator("keys", "secondary_keys", mode="before")
    @classmethod
    def _one_key(cls, v):
        return [v] if isinstance(v, str) else v

    @field_validator("logic", mode="before")
    @classmethod
    def _st_spelling(cls, v):  # SillyTavern shows "AND ANY"
        return v.strip().lower().replace(" ", "_") if isinstance(v, str) else v


@dataclass(frozen=True)
class Rule:
    """An entry with its keys compiled under the settings that apply to it."""

    entry: Entry
    index: int  # position in the file: ties in order keep file order
    keys: tuple[re.Pattern, ...]
    secondary: tuple[re.Pattern, ...]
    scan_depth: int

    def matches(self, text: str) -> bool:
        if not any(k.search(text) for k in self.keys):
            return False
        if not self.secondary:
            return True
        hits = [bool(k.search(text)) for k in self.secondary]
        logic = self.entry.logic
        return {"and_any": any(hits), "and_all": all(hits),
                "not_any": not any(hits), "not_all": not all(hits)}[logic]


async def run(em: "Em", config: Config, history: Sequence[Message]) -> AsyncIterator[str]:
    path = em.folder / config.file
    if not path.is_file():
        if "file" in config.model_fields_set:
            raise ConfigError(f"lore file {path} does not exist; create it or fix 'file:' in "
                              f"{em.folder / 'config.yaml'}")
        return
    rules = compile_rules(load_entries(path), config)
    deepest = max((r.scan_depth for r in rules), default=0)  # render only what any entry scans
    texts = message_texts(em.config.message_history_format, history[len(history) - deepest:] if deepest else [])
    for entry in activate(rules, texts, config, count_tokens=_counter(em)):
        yield entry.content


def load_entries(path: Path) -> list[Entry]:
    stat = path.stat()
    return list(_load_entries(path, stat.st_mtime_ns, stat.st_size))


@lru_cache(maxsize=32)
def _load_entries(path: Path, _mtime: int, _size: int) -> tuple[Entry, ...]:
    data = read_yaml(path)
    unknown = set(data) - {"entries"}
    if unknown:
        raise ConfigError(f"{path}: unknown key '{sorted(unknown)[0]}'; a lore file has one key, 'entries:'")
    raw = data.get("entries") or []
    if not isinstance(raw, list):
        raise ConfigError(f"{path}: 'entries:' must be a list of entries (lines starting with '- ')")
    entries = []
    for i, item in enumerate(raw):
        label = f"entry {i + 1}" + (f" ({item['name']!r})" if isinstance(item, dict) and item.get("name") else "")
        entry = validate(Entry, item, path, label)
        if not entry.content.strip():
            raise ConfigError(f"{path}: {label} has no content; add 'content:' with the text to insert")
        if not entry.keys and not entry.constant:
            raise ConfigError(f"{path}: {label} has no keys; add 'keys:' or set 'constant: true'")
        for key in entry.keys + entry.secondary_keys:
            _pattern(key, path, label, True, False)  # surface bad regexes at load time
        entries.append(entry)
    return tuple(entries)


def compile_rules(entries: Sequence[Entry], config: Config, source: Path | str = "lore") -> list[Rule]:
    default_depth = config.scan_depth if config.scan_depth is not None else config.recent_message_attention
    rules = []
    for i, e in enumerate(entries):
        if not e.enabled:
            continue
        case = config.case_sensitive if e.case_sensitive is None else e.case_sensitive
        whole = config.match_whole_words if e.match_whole_words is None else e.match_whole_words
        compile_ = lambda keys: tuple(_pattern(k, source, e.name or f"entry {i + 1}", case, whole) for k in keys)  # noqa: E731
        depth = default_depth if e.scan_depth is None else e.scan_depth
        rules.append(Rule(e, i, compile_(e.keys), compile_(e.secondary_keys), depth))
    return rules


def activate(rules: Sequence[Rule], messages: Sequence[str], config: Config,
             count_tokens: Callable[[str], int] | None = None) -> list[Entry]:
    """The entries that make it in, highest ``order`` first. ``messages``: oldest first."""
    count = count_tokens or estimate_tokens
    budget, sep_cost = config.max_tokens, count(config.separator)
    admitted: dict[int, Rule] = {}
    used, recursion_text = 0, ""
    pending = [r for r in rules if r.entry.constant or r.matches(_scanned(messages, r.scan_depth))]
    for level in range(config.max_recursion + 1 if config.recursive else 1):
        fresh = []
        for rule in sorted(pending, key=lambda r: (not r.entry.constant, -r.entry.order, r.index)):
            cost = count(rule.entry.content) + (sep_cost if admitted else 0)
            if budget is not None and used + cost > budget:
                return _in_order(admitted)  # SillyTavern: a full budget activates nothing more
            used += cost
            admitted[rule.index] = rule
            fresh.append(rule)
        recursion_text += "".join("\n" + r.entry.content for r in fresh if not r.entry.prevent_recursion)
        if not recursion_text:
            break
        pending = [r for r in rules if r.index not in admitted and not r.entry.exclude_recursion
                   and r.matches(_scanned(messages, r.scan_depth) + recursion_text)]
        if not pending:
            break
    return _in_order(admitted)


def estimate_tokens(text: str) -> int:
    """A cautious count for when no engine is at hand: about 3 characters a token."""
    return (len(text) + 2) // 3


def _in_order(admitted: dict[int, Rule]) -> list[Entry]:
    return [r.entry for r in sorted(admitted.values(), key=lambda r: (-r.entry.order, r.index))]


def _scanned(messages: Sequence[str], depth: int) -> str:
    return "\n".join(messages[len(messages) - depth:]) if depth else ""


def _pattern(key: str, source: Path | str, label: str, case_sensitive: bool, whole_words: bool) -> re.Pattern:
    if m := re.fullmatch(r"/(.+)/([a-z]*)", key, re.S):
        flags = 0
        for letter in m.group(2):
            flag = {"i": re.I, "m": re.M, "s": re.S, "x": re.X}.get(letter)
            if flag is None:
                raise ConfigError(f"{source}: {label}: regex key {key!r} has unknown flag '{letter}'; use i, m, s or x")
            flags |= flag
        try:
            return re.compile(m.group(1), flags)
        except re.error as e:
            raise ConfigError(f"{source}: {label}: bad regex key {key!r}: {e}") from None
    body = re.escape(key.strip())
    if whole_words:
        body = rf"(?<!\w){body}(?!\w)"
    return re.compile(body, 0 if case_sensitive else re.I)


def _counter(em: "Em") -> Callable[[str], int]:
    # prompt assembly may attach the engine's counter to the em; otherwise estimate
    return getattr(em, "count_tokens", None) or estimate_tokens


FACULTY = Faculty("lore", Config, run)
