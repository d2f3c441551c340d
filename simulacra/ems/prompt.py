"""Prompt assembly: faculty sections, then the conversation, under token budgets (DESIGN.md §4).

Budget: ``min(model context, total_max_tokens) - continuation_max_tokens``. Every item is
tokenized once; sections and history are filled by adding counts, never by re-tokenizing the
growing prompt, and history is rendered newest first only until the budget is full, so assembly
is at most linear in the history. Faculties fill in config order, each under
its own ``max_tokens``/``max_items``, while the last few messages stay reserved; the history then
fills what is left, newest first, and is laid out oldest first. A section with ``depth`` (an
author's note) goes that many messages before the end of the conversation.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

from simulacra.chat import ChatFormat, Format, completion_prompt, get_format, speakers, visible
from simulacra.ems.config import SectionConfig
from simulacra.ems.em import Em
from simulacra.errors import ConfigError
from simulacra.types import Message

RESERVED_RECENT = 3  # messages of history that faculties may never crowd out


@dataclass
class Section:
    name: str
    items: list[str]  # the items that fit, in prompt order
    text: str
    tokens: int
    dropped: int = 0  # items yielded but over budget


@dataclass
class Prompt:
    text: str
    sections: list[Section]
    stops: list[str]
    next_author: str
    budget: int
    tokens: int = 0
    history: list[Message] = field(default_factory=list)  # the messages that made it in


def em_format(em: Em) -> Format:
    """The em's message format; ``chat`` reads the template from the em's local model file."""
    name = em.config.message_history_format
    if name != "chat":
        return get_format(name)
    from simulacra.engine.catalogue import resolve
    from simulacra.engine.spec import default_model, parse_spec

    kind, rest = parse_spec(em.config.continuation_model or default_model())
    if kind not in ("llama", "torch"):
        raise ConfigError(f"{em.folder}/config.yaml: message_history_format 'chat' needs a local model "
                          "whose template simulacra can read; use irc or colon with this model")
    return get_format("chat", str(resolve(rest, folders_ok=True)))


async def build_prompt(em: Em, history: Sequence[Message], count_tokens: Callable[[str], int],
                       max_context: int, next_author: str | None = None, now: float | None = None,
                       fmt: Format | None = None) -> Prompt:
    config, fmt = em.config, fmt or em_format(em)
    count_tokens = _once(count_tokens)
    next_author = next_author or em.name
    variables = {"name": em.name, "now": time.strftime("%Y-%m-%d %H:%M", time.localtime(now or time.time()))}
    fill = lambda s: _substitute(s, variables)  # noqa: E731
    budget = min(max_context, config.total_max_tokens) - config.continuation_max_tokens
    messages = visible(history, em.name, thoughts=True)[-config.recency_window:]
    recent = [count_tokens(_render(fmt, m)) for m in messages[-RESERVED_RECENT:]]
    tail_tokens = count_tokens(fmt.prefix(next_author)) + 8  # the prefix, and slack for joins
    reserved = sum(recent) + tail_tokens

    sections: list[Section] = []
    notes: list[tuple[int, Section]] = []
    used = 0
    for faculty, fconfig in em.faculties:
        items = [fill(item) async for item in faculty.run(em, fconfig, messages)]
        section = _fill_section(faculty.name, items, fconfig, count_tokens, budget - reserved - used, fill)
        used += section.tokens
        depth = getattr(fconfig, "depth", None)
        if depth is None:
            sections.append(section)
        elif section.items:
            notes.append((depth, section))

    layout, history_tokens = _newest_that_fit(messages, fmt, count_tokens, budget - used - tail_tokens)
    shown = messages[len(messages) - len(layout):]
    for depth, note in sorted(notes, key=lambda d: -d[0]):
        layout.insert(max(0, len(layout) - depth), note.text)
    header, footer = fill(config.message_history_header), fill(config.message_history_footer)
    faculty_text = "".join(s.text for s in sections)
    if isinstance(fmt, ChatFormat):  # faculties become the system turn, the conversation its turns
        text, stops = completion_prompt(shown, next_author, fmt, system=faculty_text + header or None)
        history_text = text
    else:
        history_text = header + config.message_history_separator.join(layout) + footer
        text = faculty_text + history_text + fmt.prefix(next_author)
        stops = fmt.stops(next_author, speakers(shown, exclude=next_author))
    sections += [note for _, note in notes]
    sections.append(Section("conversation", layout, history_text, history_tokens, len(messages) - len(shown)))
    stops = list(dict.fromkeys([*stops, *config.stop_sequences]))
    return Prompt(text, sections, stops, next_author, budget, used + history_tokens + tail_tokens, shown)


def _render(fmt: Format, message: Message) -> str:
    if isinstance(fmt, ChatFormat):  # counted as its content: the template adds a few tokens a turn
        return message.content
    if message.kind == "thought":  # the em's own thoughts read as an action in its history
        message = Message(message.author, f"(thinks) {message.content}", kind="action")
    return fmt.render([message])


def _fill_section(name: str, items: list[str], config: SectionConfig, count_tokens, room: int, fill) -> Section:
    limit = room if config.max_tokens is None else min(room, config.max_tokens)
    header, footer = fill(config.header), fill(config.footer)
    max_items = len(items) if config.max_items is None else config.max_items
    taken, tokens = [], count_tokens(header + footer) if items else 0
    sep_cost = count_tokens(config.separator) if config.separator else 0
    for item in items:
        cost = count_tokens(item) + (sep_cost if taken else 0)
        if len(taken) >= max_items or tokens + cost > limit:
            break
        taken.append(item)
        tokens += cost
    if not taken:
        return Section(name, [], "", 0, len(items))
    ordered = taken[::-1] if config.operator == "prepend" else taken
    return Section(name, ordered, header + config.separator.join(ordered) + footer, tokens, len(items) - len(taken))


def _newest_that_fit(messages: list[Message], fmt: Format, count_tokens, room: int) -> tuple[list[str], int]:
    """Render and count from the newest message back until the room is full: work stops at what fits."""
    kept, total = [], 0
    for message in reversed(messages):
        text = _render(fmt, message)
        cost = count_tokens(text)
        if total + cost > room:
            break
        kept.append(text)
        total += cost
    return kept[::-1], total


def _once(count_tokens: Callable[[str], int]) -> Callable[[str], int]:
    seen: dict[str, int] = {}
    return lambda text: seen[text] if text in seen else seen.setdefault(text, count_tokens(text))


def _substitute(text: str, variables: dict[str, str]) -> str:
    # only known {names}: a corpus full of braces must pass through untouched
    for key, value in variables.items():
        text = text.replace("{" + key + "}", value)
    return text
