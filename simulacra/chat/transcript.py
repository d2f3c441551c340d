"""Transcripts and turn-taking: who sees what, what prompt gets whose reply, and how a reply,
or a chat-API conversation, becomes Messages again. Pure functions; no engine calls.

Two ways to get a reply from a model:

- completion: ``completion_prompt`` renders the transcript in a format and ends it with the next
  speaker's prefix; the stops are every other speaker's prefix; ``parse_reply`` reads the
  continuation back, cutting where another speaker's turn begins.
- chat servers: ``to_chat_turns`` maps a many-speaker transcript onto system/user/assistant
  turns from one speaker's point of view; ``from_chat_turns`` is the inverse a server uses.
"""
from __future__ import annotations

import re
from typing import Any, Iterable, Mapping, Sequence

from simulacra.chat.formats import NOTICE_KINDS, ChatFormat, Format
from simulacra.errors import InputError
from simulacra.types import ChatTurn, Message

NAME_MODES = ("prefix", "field", "both")
_THINK = re.compile(r"<think>\n?(.*?)\n?</think>\n?", re.DOTALL)


def visible(messages: Iterable[Message], viewer: str | None, thoughts: bool = False) -> list[Message]:
    """What ``viewer`` can see: public messages, world notices, and (if asked) its own thoughts.
    Other people's thoughts are never shown."""
    return [m for m in messages
            if m.kind != "thought" or (thoughts and m.author is not None and m.author == viewer)]


def speakers(messages: Iterable[Message], exclude: str | None = None) -> list[str]:
    """Everyone who wrote in the transcript, most recent first."""
    seen = dict.fromkeys(m.author for m in reversed(list(messages)) if m.author is not None)
    return [a for a in seen if a != exclude]


def completion_prompt(messages: Sequence[Message], next_author: str, fmt: Format, *,
                      system: str | None = None, kind: str = "message") -> tuple[str, list[str]]:
    """The prompt that makes ``next_author`` speak next, and the stop sequences that end the
    reply where another speaker's turn would begin.

    Text formats: ``system`` (if any) goes first on its own line(s); thoughts are left out;
    stops are the prefixes of every other speaker in the transcript (no cap: engines enforce
    stops client-side beyond what a backend takes natively). Chat format: the transcript is
    mapped with ``to_chat_turns`` as seen by ``next_author``, rendered with the generation
    prompt, and a leading bos token is removed (completion engines add their own).
    """
    if isinstance(fmt, ChatFormat):
        turns = to_chat_turns(messages, next_author, system=system)
        prompt = fmt.template.render(turns, add_generation_prompt=True)
        bos = fmt.template.markers.bos
        if bos and prompt.startswith(bos):
            prompt = prompt[len(bos):]
        return prompt, fmt.stops("assistant", ["user", "system"])
    shown = [m for m in messages if m.kind != "thought"]
    header = system.rstrip("\n") + "\n" if system else ""
    prompt = header + fmt.render(shown) + fmt.prefix(next_author, kind)
    return prompt, fmt.stops(next_author, speakers(messages, exclude=next_author))


def parse_reply(next_author: str, continuation: str, fmt: Format, *, kind: str = "message") -> list[Message]:
    """A continuation of ``completion_prompt`` back into messages. The first belongs to
    ``next_author``; more of theirs may follow; anything from the first message not theirs
    (another speaker, a world notice) on is cut. Contents are stripped, empty ones dropped."""
    if isinstance(fmt, ChatFormat):
        turns = fmt.template.parse(fmt.prefix("assistant") + continuation)
        content = turns[0][1].strip() if turns else continuation.strip()
        return [Message(next_author, content)] if content else []
    out = []
    for m in fmt.parse(fmt.prefix(next_author, kind) + continuation):
        if m.author != next_author or m.kind not in ("message", "action"):
            break
        if m.content.strip():
            out.append(Message(next_author, m.content.strip(), kind=m.kind))
    return out


def to_chat_turns(messages: Sequence[Message], as_author: str, system: str | None = None, *,
                  names: str = "prefix", thoughts: bool = False) -> list[dict[str, Any]]:
    """A many-speaker transcript as chat turns seen by ``as_author``.

    ``system`` and any leading system messages make the system turn. ``as_author``'s messages
    become assistant turns; everyone else's become user turns. ``names`` keeps who said what:
    "prefix" writes ``name: text`` lines (survives templates that drop the ``name`` field),
    "field" sets the OpenAI ``name`` field (sanitised to [A-Za-z0-9_-]) and keeps one speaker
    per user turn, "both" does both (the field only on single-speaker turns). Consecutive turns
    of one role merge, one line per message, so roles alternate as strict templates demand.
    Actions are ``* name text`` lines, world notices ``[text]`` lines. Others' thoughts are
    dropped; ``as_author``'s own are kept as ``<think>...</think>`` when ``thoughts`` is set.
    """
    if names not in NAME_MODES:
        raise InputError(f"names must be one of {', '.join(NAME_MODES)}, not '{names}'")
    system_parts = [system] if system else []
    rest = list(messages)
    while rest and rest[0].kind == "system" and rest[0].author is None:
        system_parts.append(rest.pop(0).content)
    runs: list[tuple[str, list[str], list[str | None]]] = []  # (role, lines, speakers)
    for m in rest:
        role, line = _turn_line(m, as_author, names, thoughts)
        if line is None:
            continue
        speaker = m.author if m.kind not in NOTICE_KINDS else None
        last = runs[-1] if runs else None
        if last and last[0] == role and (role == "assistant" or names != "field" or set(last[2]) == {speaker}):
            last[1].append(line)
            last[2].append(speaker)
        else:
            runs.append((role, [line], [speaker]))
    turns: list[dict[str, Any]] = [{"role": "system", "content": "\n\n".join(system_parts)}] if system_parts else []
    for role, lines, who in runs:
        turn: dict[str, Any] = {"role": role, "content": "\n".join(lines)}
        if role == "user" and names != "prefix" and len(set(who)) == 1 and who[0] is not None:
            turn["name"] = _field_name(who[0])
        turns.append(turn)
    return turns


def _turn_line(m: Message, as_author: str, names: str, thoughts: bool) -> tuple[str, str | None]:
    if m.kind == "thought":
        keep = thoughts and m.author == as_author
        return "assistant", (f"<think>\n{m.content}\n</think>" if keep else None)
    if m.author is None or m.kind in NOTICE_KINDS:
        return "user", f"[{m.author}: {m.content}]" if m.author else f"[{m.content}]"
    if m.kind == "action":
        return ("assistant" if m.author == as_author else "user"), f"* {m.author} {m.content}"
    if m.author == as_author:
        return "assistant", m.content
    return "user", m.content if names == "field" else f"{m.author}: {m.content}"


def _field_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", name)[:64] or "_"


def from_chat_turns(turns: Sequence[ChatTurn], assistant_name: str = "assistant", user_name: str = "user",
                    *, names: Iterable[str] = ()) -> list[Message]:
    """Chat turns (as a server receives them) into Messages: system turns become system
    messages, assistant turns ``assistant_name``'s (or their ``name`` field's), user turns
    ``user_name``'s (or their ``name`` field's), tool turns observations.

    A user turn written by ``to_chat_turns`` is split back into speakers: a line starting
    ``name: `` starts a message if the name is known (``names``, ``user_name`` or any turn's
    ``name`` field); ``* name text`` lines are actions, whole ``[text]`` lines notices, and
    other lines continue the message before them. ``<think>`` blocks in assistant turns
    become thoughts. Consecutive assistant messages merged by ``to_chat_turns`` stay merged.
    """
    field_names = [t["name"] for t in turns if isinstance(t.get("name"), str) and t["name"]]
    known = {*names, user_name, assistant_name, *field_names}
    out: list[Message] = []
    for t in turns:
        out += _turn_messages(t, assistant_name, user_name, known)
    return out


def _turn_messages(t: ChatTurn, assistant_name: str, user_name: str, known: set[str]) -> list[Message]:
    role, text = t.get("role"), _text(t.get("content"))
    if role in ("system", "developer"):
        return [Message(None, text, kind="system")]
    if role == "tool":
        return [Message(t.get("name") or "tool", text, kind="observation")]
    out: list[Message] = []
    if role == "assistant":
        author = t.get("name") or assistant_name
        pos = 0
        for think in _THINK.finditer(text):
            out += _split_lines(text[pos:think.start()], author, {author}, speakers=False)
            out.append(Message(author, think.group(1), kind="thought"))
            pos = think.end()
        out += _split_lines(text[pos:], author, {author}, speakers=False)
    else:
        author = t.get("name") or user_name
        out += _split_lines(text, author, known | _unsanitised(text, author), speakers=True)
    return out or [Message(author, text)]  # an empty turn still says someone spoke


def _split_lines(text: str, default: str, known: set[str], speakers: bool) -> list[Message]:
    msgs: list[tuple[str | None, str, list[str], bool]] = []  # author, kind, lines, explicit
    for line in text.split("\n"):
        hit = _line_speaker(line, known, speakers)
        if hit is not None:
            msgs.append((hit[0], hit[1], [hit[2]], True))
        elif msgs:
            msgs[-1][2].append(line)
        elif line.strip():
            msgs.append((default, "message", [line], False))
    # A line given a speaker is kept even when empty; unattributed blank text is not a message.
    return [Message(a, "\n".join(lines), kind=k) for a, k, lines, explicit in msgs
            if explicit or "\n".join(lines).strip()]


def _line_speaker(line: str, known: set[str], speakers: bool) -> tuple[str | None, str, str] | None:
    if line.startswith("[") and line.endswith("]") and len(line) >= 2 and speakers:
        return None, "observation", line[1:-1]
    if line.startswith("* "):
        name, _, rest = line[2:].partition(" ")
        if name in known:
            return name, "action", rest
    if speakers:
        name, sep, rest = line.partition(": ")
        if sep and name in known:
            return name, "message", rest
        if line.endswith(":") and line[:-1] in known:
            return line[:-1], "message", ""
    return None


def _unsanitised(text: str, field: str) -> set[str]:
    """The real name behind a sanitised ``name`` field, from the first ``Real Name: `` line."""
    name, sep, _ = text.partition(": ")
    return {name} if sep and "\n" not in name and _field_name(name) == field else set()


def _text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):  # OpenAI content parts: keep the text ones
        return "\n".join(p.get("text", "") for p in content if isinstance(p, Mapping) and p.get("type") == "text")
    return str(content)
