"""Message formats: how a transcript of Messages becomes text and back (Chapter II style).

A format owns three things: ``render`` (messages -> text), ``parse`` (text -> messages) and the
speaker ``prefix`` (what starts a message by someone). Stop sequences come from the prefixes of
the *other* speakers, so a completion engine stops where another speaker's turn would begin.

Text formats (``irc``, ``colon``) share one line grammar:

    <bob> hello                 a message (irc);  ``Bob: hello`` in the colon format
    * bob waves                 an action (kind "action"); the name is the first word
    -!- the door creaks open    a notice from the world (author None, kind "observation")
    ---                         a section: the prefixed line after it starts a message whose
    <bob> first line            following lines are taken verbatim (even ones that look like
    second line                 prefixes) until the closing ``---``
    ---

Canonical render: one line per single-line message, a ``---`` section per multi-line message.
Parsing is tolerant because it reads model output: it never raises; outside sections a line
without a prefix continues the previous message (trailing blank lines are dropped) and lines
before the first prefix are dropped. A line ``<bob> a`` followed by ``<bob> b`` is two messages,
as in Chapter II logs. Thoughts have no text form: ``render`` refuses them (filter first).
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Iterable, Protocol, Sequence, runtime_checkable

from simulacra.errors import ConfigError, InputError
from simulacra.types import Message

if TYPE_CHECKING:
    from simulacra.chat.template import ChatTemplate

SECTION = "---"
NOTICE = "-!-"
NOTICE_KINDS = ("observation", "system")
_ACTION = re.compile(r"\* (\S+)(?: (.*))?")
_NOTICE = re.compile(r"-!-(?: (.*))?")


@runtime_checkable
class Format(Protocol):
    name: str

    def prefix(self, author: str | None, kind: str = "message") -> str: ...

    def render(self, messages: Sequence[Message]) -> str: ...

    def parse(self, text: str) -> list[Message]: ...

    def stops(self, for_author: str | None, others: Iterable[str | None]) -> list[str]: ...

    def valid(self, message: Message) -> bool: ...


class LineFormat:
    """The shared line grammar; subclasses say what a message line looks like."""

    name = "lines"
    _message: re.Pattern  # group 1: author, group 2: content (may be None)

    def message_prefix(self, author: str) -> str:
        raise NotImplementedError

    def valid_name(self, author: str) -> bool:
        raise NotImplementedError

    def prefix(self, author: str | None, kind: str = "message") -> str:
        """Text that starts a message by ``author``; no trailing space (BPE models put the space
        on the next token, so a prompt should end right after the prefix)."""
        if author is None or kind in NOTICE_KINDS:
            return NOTICE
        if kind == "action":
            return f"* {author}"
        return self.message_prefix(author)

    def render(self, messages: Sequence[Message]) -> str:
        return "".join(self._render_one(m) for m in messages)

    def _render_one(self, m: Message) -> str:
        if m.kind not in ("message", "action", *NOTICE_KINDS):
            raise InputError(f"the {self.name} format cannot show a '{m.kind}' message; "
                             "drop it first (simulacra.chat.visible)")
        content = m.content.replace("\r\n", "\n").replace("\r", "\n")
        if m.author is not None and m.kind in NOTICE_KINDS:
            content = f"{m.author}: {content}"  # a notice has no author slot: keep who in the text
        elif m.author is not None and (not m.author.strip() or re.search(r"[\n\r]", m.author)):
            raise InputError(f"speaker name {m.author!r} cannot be written in the {self.name} format; "
                             "use a name on one line")
        first, *rest = content.split("\n")
        head = self.prefix(m.author, m.kind) + (" " + first if first else "")
        if not rest:
            return head + "\n"
        return f"{SECTION}\n{head}\n" + "\n".join(rest) + f"\n{SECTION}\n"

    def parse(self, text: str) -> list[Message]:
        lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        if lines and lines[-1] == "":
            lines.pop()  # the final newline ends the last line; it is not an empty line
        out: list[Message] = []
        cur: tuple[str | None, str, list[str]] | None = None
        state = "out"  # "open": just after ---; "in": inside a section (verbatim)

        def finish(verbatim: bool) -> None:
            if cur is None:
                return
            author, kind, body = cur
            if not verbatim:
                while len(body) > 1 and not body[-1].strip():
                    body.pop()
            out.append(Message(author, "\n".join(body), kind=kind))

        for line in lines:
            is_sep = line.strip() == SECTION
            if state == "in":
                if is_sep:
                    finish(True)
                    cur, state = None, "out"
                else:
                    cur[2].append(line)
                continue
            if is_sep:
                finish(False)
                cur, state = None, "open"
                continue
            hit = self._classify(line)
            if hit is not None:
                finish(False)
                cur = (hit[0], hit[1], [hit[2]])
                state = "in" if state == "open" else "out"
            elif cur is not None:
                cur[2].append(line)
            elif line.strip():
                state = "out"  # junk before any prefix: dropped
        finish(state == "in")
        return out

    def _classify(self, line: str) -> tuple[str | None, str, str] | None:
        if m := _NOTICE.fullmatch(line):
            return None, "observation", m.group(1) or ""
        if m := _ACTION.fullmatch(line):
            return m.group(1), "action", m.group(2) or ""
        if m := self._message.fullmatch(line):
            return m.group(1), "message", m.group(2) or ""
        return None

    def stops(self, for_author: str | None, others: Iterable[str | None]) -> list[str]:
        """Where a reply by ``for_author`` should end: a new line starting another speaker's
        message or action, or a world notice. Own prefixes are not stops (several messages in
        a row are fine); speakers not listed are cut later by ``parse_reply``."""
        out: list[str] = []
        for other in others:
            if other is None or other == for_author:
                continue
            out += ["\n" + self.message_prefix(other), "\n" + self.prefix(other, "action") + " "]
        out.append("\n" + NOTICE)
        return list(dict.fromkeys(out))

    def valid(self, m: Message) -> bool:
        """Whether ``m`` survives render -> parse unchanged."""
        if "\r" in m.content:
            return False
        if "\n" in m.content and any(l.strip() == SECTION for l in m.content.split("\n")):
            return False
        if m.author is None:
            return m.kind == "observation"
        if m.kind == "action":
            return bool(re.fullmatch(r"\S+", m.author))
        return m.kind == "message" and self.valid_name(m.author)


class IRC(LineFormat):
    """``<name> text`` — the Chapter II chat log format."""

    name = "irc"
    _message = re.compile(r"<([^<>]+)> ?(.*)")

    def message_prefix(self, author: str) -> str:
        return f"<{author}>"

    def valid_name(self, author: str) -> bool:
        return bool(author.strip()) and not re.search(r"[<>\n\r]", author)


class Colon(LineFormat):
    """``Name: text`` — screenplay style. Inherently ambiguous with prose ("Note: ..."), so a
    name is at most 32 characters and 3 words, starting with a letter or digit."""

    name = "colon"
    _message = re.compile(r"(\w(?:[\w.'\-]| (?=[\w.'\-])){0,31}):(?: (.*))?")

    def message_prefix(self, author: str) -> str:
        return f"{author}:"

    def valid_name(self, author: str) -> bool:
        return bool(self._message.fullmatch(author + ":")) and author.count(" ") <= 2

    def _classify(self, line: str) -> tuple[str | None, str, str] | None:
        hit = super()._classify(line)
        if hit and hit[1] == "message" and hit[0].count(" ") > 2:
            return None  # "The answer is this: 42" is prose, not a speaker
        return hit


class ChatFormat:
    """The model's own chat template. Here a Message's author is the *role* ("system", "user",
    "assistant"); ``simulacra.chat.to_chat_turns`` maps a multi-party transcript onto roles.

    ``parse(render(x)) == x`` holds for contents the template keeps verbatim, provided the
    template adds no turns of its own (SmolLM2 injects a default system turn when x has none).
    """

    name = "chat"

    def __init__(self, template: "ChatTemplate"):
        self.template = template

    def prefix(self, author: str | None, kind: str = "message") -> str:
        marks = self.template.markers
        role = author or "system"
        if role == "assistant":
            return marks.generation
        return marks.open.get(role, marks.open.get("user", ""))

    def render(self, messages: Sequence[Message], add_generation_prompt: bool = False) -> str:
        for m in messages:
            if m.kind not in ("message", *NOTICE_KINDS):
                raise InputError(f"the chat format cannot show a '{m.kind}' message; "
                                 "map the transcript with simulacra.chat.to_chat_turns first")
        turns = [{"role": m.author or "system", "content": m.content} for m in messages]
        return self.template.render(turns, add_generation_prompt=add_generation_prompt)

    def parse(self, text: str) -> list[Message]:
        return [Message(role, content) for role, content in self.template.parse(text)]

    def stops(self, for_author: str | None, others: Iterable[str | None]) -> list[str]:
        marks = self.template.markers
        out = [marks.close.get(for_author or "system", "").strip(), self.template.eos_token,
               marks.turn_start]
        out += [marks.open.get(o or "system", "").strip() for o in others if o != for_author]
        return [s for s in dict.fromkeys(out) if s]

    def valid(self, m: Message) -> bool:
        marks = self.template.markers
        if m.kind != "message" or m.author not in marks.open or "\r" in m.content:
            return False
        if marks.trims and m.content != m.content.strip():
            return False
        return not any(t and t in m.content for t in marks.all_markers())


FORMATS = ("irc", "colon", "chat")


def get_format(name: str, template: "ChatTemplate | str | None" = None) -> Format:
    """A format by name. ``chat`` needs a template: a ChatTemplate, or a path to a GGUF file,
    a Hugging Face folder or a .jinja file."""
    if name == "irc":
        return IRC()
    if name == "colon":
        return Colon()
    if name == "chat":
        if template is None:
            raise ConfigError("the chat format needs the model's chat template; pass a GGUF file "
                              "or Hugging Face folder, or use --format irc")
        if isinstance(template, str):
            from simulacra.chat.template import ChatTemplate

            template = ChatTemplate.load(template)
        return ChatFormat(template)
    raise ConfigError(f"unknown message format '{name}'; use one of: {', '.join(FORMATS)}")
