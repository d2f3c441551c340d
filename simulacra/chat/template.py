"""Chat templates: the Jinja program a chat model ships with, rendered the way Hugging Face does.

A template comes from a GGUF file's metadata (``tokenizer.chat_template`` and the bos/eos
tokens) or a Hugging Face folder (``chat_template.jinja`` / ``tokenizer_config.json``). It is
rendered in a sandbox with the variables templates expect (``messages``,
``add_generation_prompt``, ``bos_token``, ``eos_token``, ``tools``, ``raise_exception``...), so
any model's template works, not just ChatML.

Turn-taking needs the template's markers (where a turn opens and closes). Nothing is hard-coded
per model: they are found by rendering probe conversations with unique sentinel contents and
reading what the template put around them.
"""
from __future__ import annotations

import json
import mmap
import struct
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property, lru_cache
from os import PathLike
from pathlib import Path
from typing import Any, Mapping, Sequence

from simulacra.errors import InputError, ModelError, ModelNotFound


@dataclass(frozen=True)
class ChatTemplate:
    source: str
    bos_token: str = ""
    eos_token: str = ""
    special: Mapping[str, str] = field(default_factory=dict)  # other *_token variables
    origin: str = ""  # where it was read from, for error messages

    @classmethod
    def load(cls, path: str | PathLike) -> "ChatTemplate":
        """From a .gguf file, a Hugging Face folder, or a bare .jinja file."""
        p = Path(path).expanduser()
        if p.is_dir():
            return cls.from_hf(p)
        if not p.exists():
            raise ModelNotFound(f"no chat template at {p}: give a .gguf file, a Hugging Face folder or a .jinja file")
        if p.suffix == ".gguf":
            return cls.from_gguf(p)
        return cls(p.read_text(encoding="utf-8"), origin=str(p))

    @classmethod
    def from_gguf(cls, path: str | PathLike) -> "ChatTemplate":
        meta = read_gguf_metadata(path, wanted=("tokenizer.chat_template", "tokenizer.ggml.tokens")
                                  + tuple(f"tokenizer.ggml.{k}_token_id" for k in _TOKEN_KEYS))
        if "tokenizer.chat_template" not in meta:
            raise ModelError(f"{path} has no chat template (a base model?); use --format irc or colon")
        tokens = meta.get("tokenizer.ggml.tokens", [])
        named = {}
        for key, var in _TOKEN_KEYS.items():
            i = meta.get(f"tokenizer.ggml.{key}_token_id")
            if isinstance(i, int) and 0 <= i < len(tokens):
                named[var] = tokens[i]
        return cls(meta["tokenizer.chat_template"], named.pop("bos_token", ""), named.pop("eos_token", ""),
                   named, origin=str(path))

    @classmethod
    def from_hf(cls, folder: str | PathLike, name: str = "default") -> "ChatTemplate":
        folder = Path(folder)
        config = _read_json(folder / "tokenizer_config.json")
        source = config.get("chat_template")
        if (folder / "chat_template.jinja").exists():
            source = (folder / "chat_template.jinja").read_text(encoding="utf-8")
        elif (folder / "chat_template.json").exists():
            source = _read_json(folder / "chat_template.json").get("chat_template")
        if isinstance(source, list):  # named templates: [{"name": ..., "template": ...}]
            source = {t.get("name"): t.get("template") for t in source}.get(name)
        if not isinstance(source, str):
            raise ModelError(f"no chat template named '{name}' in {folder}; use --format irc or colon")
        tokens = {k: _token_text(v) for k, v in config.items()
                  if k.endswith("_token") and isinstance(_token_text(v), str)}
        return cls(source, tokens.pop("bos_token", ""), tokens.pop("eos_token", ""), tokens,
                   origin=str(folder))

    def render(self, turns: Sequence[Mapping[str, Any]], add_generation_prompt: bool = False,
               tools: Sequence[Mapping] | None = None, **extra: Any) -> str:
        """What ``tokenizer.apply_chat_template(turns, tokenize=False, ...)`` returns."""
        import jinja2

        clean = [{k: v for k, v in dict(t).items() if v is not None} for t in turns]
        try:
            return _compile(self.source).render(
                messages=clean, add_generation_prompt=add_generation_prompt, tools=tools,
                documents=None, **{**self.special, "bos_token": self.bos_token,
                                   "eos_token": self.eos_token, **extra})
        except jinja2.TemplateError as e:
            raise InputError(f"the chat template of {self.origin or 'this model'} refused the "
                             f"conversation: {e}") from None

    @cached_property
    def markers(self) -> "TurnMarkers":
        return derive_markers(self)

    def parse(self, text: str) -> list[tuple[str, str]]:
        """A rendered conversation back into (role, content) turns. Text outside any turn is
        dropped; an unterminated last turn (a generation in progress) runs to the end."""
        marks = self.markers
        if marks.bos and text.startswith(marks.bos):
            text = text[len(marks.bos):]
        openers = sorted(((o, r) for r, os in marks.openers().items() for o in os if o),
                         key=lambda x: -len(x[0]))
        turns, pos = [], 0
        while openers:
            hits = [(text.find(o, pos), o, r) for o, r in openers]
            hits = [h for h in hits if h[0] >= 0]
            if not hits:
                break
            at, opener, role = min(hits, key=lambda h: (h[0], -len(h[1])))
            start = at + len(opener)
            # A turn ends at its closing marker (with or without the template's trailing
            # whitespace, which models often skip) or where another turn opens.
            close = marks.close.get(role, "")
            closers = {c for c in (close, close.rstrip(), close.strip()) if c}
            ends = [(text.find(c, start), -len(c), c) for c in closers | {o for o, _ in openers}]
            ends = [e for e in ends if e[0] >= 0]
            end, _, ender = min(ends) if ends else (len(text), 0, "")
            turns.append((role, text[start:end]))
            pos = end + (len(ender) if ender in closers else 0)
        return turns


# GGUF's names for special tokens -> the variable names Hugging Face passes to templates
_TOKEN_KEYS = {"bos": "bos_token", "eos": "eos_token", "unknown": "unk_token", "padding": "pad_token"}


@dataclass(frozen=True)
class TurnMarkers:
    bos: str
    open: Mapping[str, str]  # role -> text before its content, as inside a conversation
    close: Mapping[str, str]  # role -> text after its content
    generation: str  # what add_generation_prompt appends: the assistant's turn header
    turn_start: str  # what every turn header starts with ("<|im_start|>"), or ""
    trims: bool  # the template strips whitespace around contents

    def openers(self) -> dict[str, list[str]]:
        out = {role: [o] for role, o in self.open.items()}
        out.setdefault("assistant", []).append(self.generation)
        return out

    def all_markers(self) -> list[str]:
        return [m.strip() for m in (self.bos, self.generation, *self.open.values(), *self.close.values())
                if m.strip()]


def derive_markers(template: ChatTemplate) -> TurnMarkers:
    """Find each role's turn markers by rendering probe conversations with sentinel contents."""
    u1, a1, u2, a2, s0 = (f"zqx{i}probe" for i in range(5))
    user = lambda c: {"role": "user", "content": c}
    asst = lambda c: {"role": "assistant", "content": c}
    try:
        text = template.render([user(u1), asst(a1), user(u2), asst(a2)])
        alone = template.render([user(u1)])
        prompted = template.render([user(u1)], add_generation_prompt=True)
    except InputError as e:
        raise ModelError(f"cannot find the turn markers of the chat template of {template.origin}: {e}") from None
    before, g1, g2, _g3, after = _gaps(text, [u1, a1, u2, a2], template)
    user_close = _after(alone, u1)
    generation = _after(prompted, u1)
    generation = generation[len(user_close):] if generation.startswith(user_close) else generation
    if g1.endswith(generation) and generation:
        user_close = g1[: len(g1) - len(generation)]
    open_a = g1[len(user_close):] if g1.startswith(user_close) else generation
    close_a = after
    open_u = g2[len(close_a):] if close_a and g2.startswith(close_a) else g2
    # Only a bos the template itself writes (SmolLM2's bos is also its turn opener).
    bos = template.bos_token if _uses_bos(template, user(u1)) else ""
    opens, closes = {"user": open_u, "assistant": open_a}, {"user": user_close, "assistant": close_a}
    try:  # a separate system turn, if the template has one (Gemma folds it into the first user turn)
        stext = template.render([{"role": "system", "content": s0}, user(u1), asst(a1)])
        sb, sg, _, _ = _gaps(stext, [s0, u1, a1], template)
        if open_u and sg.endswith(open_u) and sb.startswith(bos):
            opens["system"], closes["system"] = sb[len(bos):], sg[: len(sg) - len(open_u)]
    except (InputError, ModelError):
        pass
    try:
        trims = " zqxtrim " not in template.render([user(" zqxtrim ")])
    except InputError:
        trims = False
    return TurnMarkers(bos, opens, closes, generation, _common_prefix(open_u.strip(), generation.strip()), trims)


def _uses_bos(template: ChatTemplate, turn: dict) -> bool:
    return bool(template.bos_token) and template.render([turn], bos_token="zqxbos").startswith("zqxbos")


def _gaps(text: str, sentinels: list[str], template: ChatTemplate) -> list[str]:
    """The text before, between and after the sentinels, in order."""
    pieces, pos = [], 0
    for s in sentinels:
        at = text.find(s, pos)
        if at < 0:
            raise ModelError(f"cannot find the turn markers of the chat template of {template.origin}: "
                             "it does not keep message contents")
        pieces.append(text[pos:at])
        pos = at + len(s)
    return pieces + [text[pos:]]


def _after(text: str, sentinel: str) -> str:
    at = text.rfind(sentinel)
    return text[at + len(sentinel):] if at >= 0 else ""


def _common_prefix(a: str, b: str) -> str:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return a[:n] if n >= 3 else ""  # shorter shared starts ("<", "#") would cut ordinary text


@lru_cache(maxsize=32)
def _compile(source: str):
    """Compile once per template, in an immutable sandbox: templates from the Hub are untrusted."""
    import jinja2
    from jinja2.ext import Extension
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class GenerationTag(Extension):
        # {% generation %}...{% endgeneration %} marks assistant text for training masks;
        # rendering just keeps the body.
        tags = {"generation"}

        def parse(self, parser):
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
            return jinja2.nodes.Scope(body).set_lineno(lineno)

    def raise_exception(message):
        raise jinja2.TemplateError(message)

    def tojson(value, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        # Jinja's own tojson escapes HTML characters, which chat templates do not expect.
        return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                          sort_keys=sort_keys)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                       extensions=[GenerationTag, "jinja2.ext.loopcontrols"])
    env.filters["tojson"] = tojson
    env.globals.update(raise_exception=raise_exception,
                       strftime_now=lambda fmt: datetime.now().strftime(fmt))
    try:
        return env.from_string(source)
    except jinja2.TemplateSyntaxError as e:
        raise ModelError(f"the chat template does not compile: {e}") from None


def _read_json(path: Path) -> dict:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise ModelError(f"{path} is not valid JSON: {e}") from None
    return data if isinstance(data, dict) else {}


def _token_text(value: Any) -> Any:
    return value.get("content") if isinstance(value, dict) else value  # AddedToken as a dict


# -- GGUF metadata ------------------------------------------------------------------------
# A small reader of the key/value header only: gguf's GGUFReader maps and indexes every tensor
# and array up front (seconds for a 100 MB file), while the header takes milliseconds.

_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9


def read_gguf_metadata(path: str | PathLike, wanted: Sequence[str] | None = None) -> dict[str, Any]:
    """The key/value metadata of a GGUF file (v2/v3, little-endian); ``wanted`` limits which
    keys are decoded (arrays of other keys are skipped without building them)."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise ModelNotFound(f"no GGUF file at {p}")
    if p.stat().st_size < 24:
        raise ModelError(f"{p} is too short to be a GGUF file; download it again")
    with open(p, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        try:
            return _read_header(buf, None if wanted is None else set(wanted))
        except (struct.error, UnicodeDecodeError, KeyError, ValueError) as e:
            raise ModelError(f"{p} is not a readable GGUF file ({e}); download it again") from None


def _read_header(buf, wanted: set[str] | None) -> dict[str, Any]:
    if buf[:4] != b"GGUF":
        raise ModelError("not a GGUF file (bad magic); check the path")
    version, _tensors, count = struct.unpack_from("<IQQ", buf, 4)
    if version not in (2, 3):
        raise ModelError(f"GGUF version {version} is not supported (2 or 3 are); convert the model again")
    pos, out = 24, {}
    for _ in range(count):
        key, pos = _string(buf, pos)
        (kind,), pos = struct.unpack_from("<I", buf, pos), pos + 4
        keep = wanted is None or key in wanted
        value, pos = _value(buf, pos, kind, keep)
        if keep:
            out[key] = value
    return out


def _string(buf, pos: int) -> tuple[str, int]:
    (n,) = struct.unpack_from("<Q", buf, pos)
    return bytes(buf[pos + 8: pos + 8 + n]).decode("utf-8", errors="replace"), pos + 8 + n


def _value(buf, pos: int, kind: int, keep: bool) -> tuple[Any, int]:
    if kind == _STRING:
        return _string(buf, pos)
    if kind == _ARRAY:
        item, n = struct.unpack_from("<IQ", buf, pos)
        pos += 12
        if item in _SCALARS and not keep:
            return None, pos + n * struct.calcsize(_SCALARS[item])
        items = []
        for _ in range(n):
            if item == _STRING and not keep:  # skip: only the length is read
                pos += 8 + struct.unpack_from("<Q", buf, pos)[0]
                continue
            value, pos = _value(buf, pos, item, keep)
            items.append(value)
        return (items if keep else None), pos
    fmt = _SCALARS[kind]
    return struct.unpack_from(fmt, buf, pos)[0], pos + struct.calcsize(fmt)
