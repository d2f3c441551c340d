"""Creating em folders: ``simulacra new NAME`` and the writer that card and play imports share.

The ``config.yaml`` of a new em is generated from the schema (``EmConfig`` and each faculty's
config), so the comment above every key and every default shown stays true as the schema changes:
keys left at their default are written commented out, with the default as their value.
"""
from __future__ import annotations

import inspect
import json
import os
import re
import shutil
import sys
import textwrap
import uuid
from functools import cache
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml
from pydantic import BaseModel

from simulacra.ems.config import SECRET_KEYS, EmConfig, FacultyConfig
from simulacra.errors import ConfigError, InputError

WIDTH = 100
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")

# What each key means, for schema fields that carry no description of their own.
# A description given in the schema (Field(description=...)) takes precedence.
EM_KEYS = {
    "name": "The em's name: how it is written in chat logs (<name> text) and the name of its corpus "
            "folder <name>.chr/. Default: the folder's name.",
    "continuation_model": "The model that writes the em's replies, as a model spec (a catalogue name, "
                          "./file.gguf, openai:MODEL@URL, ...). Empty: $SIMULACRA_MODEL or the default model.",
    "continuation_max_tokens": "The most tokens one reply may have.",
    "total_max_tokens": "The most tokens a whole prompt may have, reply included (the model's context "
                        "length is the other limit).",
    "temperature": "Sampling temperature: 0 always takes the likeliest token; higher is more varied.",
    "top_p": "Nucleus sampling: draw only from the likeliest tokens whose probabilities add up to this.",
    "top_k": "Draw only from the k likeliest tokens; 0 turns this off.",
    "min_p": "Drop tokens less likely than this fraction of the likeliest token.",
    "frequency_penalty": "Lower a token's score by this much for every time it already appeared.",
    "presence_penalty": "Lower a token's score by this much once it has appeared at all.",
    "repetition_penalty": "Divide the scores of tokens already in the text by this (1: off).",
    "logit_bias": "Shift chosen tokens' scores: {token_id: bias}; -100 bans a token.",
    "seed": "Random seed for sampling; empty: a fresh seed for every reply.",
    "stop_sequences": "Extra strings that end a reply (other speakers' prefixes already do).",
    "message_history_format": "How the conversation is written in the prompt: irc (<name> text), "
                              "colon (Name: text) or chat (the model's own chat template).",
    "message_history_header": "Text above the conversation in the prompt.",
    "message_history_separator": "Text between the conversation's messages.",
    "message_history_footer": "Text below the conversation, before the em's reply begins.",
    "recency_window": "How many recent messages of the conversation the em sees.",
    "ensembles": "The faculties that build the prompt, top to bottom; each adds one section.",
    "mufflers": "Checks a reply must pass, else it is retried: has_url, too_short, repeats_prompt, "
                "{regex: PATTERN}.",
    "max_retries": "How many times a muffled reply is retried with a new seed.",
    "representation_model": "The embedding model for retrieval (corpus, memory): all-minilm-l6-v2, or "
                            "hash for a fast offline stand-in.",
    "interfaces": "Where the em talks besides the terminal (e.g. Discord).",
    "tools": "Tools the em may call (agents): which ones, which need confirmation, limits.",
    "memory.enabled": "Whether the em remembers conversations in its state/ folder.",
    "memory.importance": "Weight of how important a memory was rated.",
    "memory.relevance": "Weight of how close a memory is to the conversation.",
    "thinking.enabled": "Whether the em thinks privately before each reply.",
    "thinking.max_tokens": "The most tokens one thought may have.",
    "thinking.critique": "Whether the em critiques its draft reply and revises it.",
    "tools.timeout": "Seconds a tool call may take.",
    "tools.max_steps": "The most tool calls in one reply.",
    "tools.mcp_servers": "MCP servers whose tools the em may use, by name: {command, args, env} or {url}.",
    "api_key": "Key for a remote model server. Never write it here: put it in a file named api_key in "
               "this folder, or set $OPENAI_API_KEY.",
    "discord_token": "The Discord bot token. Never write it here: put it in a file named discord_token "
                     "in this folder.",
}
FACULTY_KEYS = {
    "header": "Text above this section's items.",
    "separator": "Text between this section's items.",
    "footer": "Text below this section's items.",
    "max_tokens": "Token budget for this section; empty: whatever room the prompt has left.",
    "max_items": "The most items this section may hold; empty: no limit.",
    "operator": "prepend: items yielded first sit nearest the conversation; append: the reverse.",
    "text": "The note itself (or give a file).",
    "chunk_by": "lines: chunk_size messages per chunk; section: one chunk per --- section.",
    "case_sensitive": "Whether keys must match case.",
    "match_whole_words": "Whether keys match only whole words.",
    "recursive": "Whether activated entries' content can activate further entries.",
}


def new_em(name: str, parent: str | Path = ".") -> Path:
    """Create the folder ``parent/name`` holding a small working em; refuse to overwrite."""
    path = Path(parent) / name
    if not NAME.fullmatch(path.name) or ".." in Path(name).parts:
        raise InputError(f"em name {name!r}: use letters, digits, '-', '_' or '.' (at most 64), "
                         "starting with a letter or digit")
    name = path.name
    ensembles = [
        {"faculty": "notes", "file": "notes/persona.txt"},
        {"faculty": "character", "max_items": 6},
        {"faculty": "history"},
    ]
    files = {
        "notes/persona.txt": f"{name} is a curious, friendly em who answers in one or two short "
                             "sentences and often asks a question back.\n",
        f"{name}.chr/{name}.txt": _example_corpus(name),
        "history.txt": f"<user> hi {name}\n<{name}> Hello! What shall we talk about?\n",
    }
    return write_em(path, {"name": name}, ensembles, files)


def write_em(folder: str | Path, settings: Mapping[str, Any], ensembles: Sequence[Mapping[str, Any]],
             files: Mapping[str, str | bytes]) -> Path:
    """Write an em folder all at once: it appears complete or not at all. Never overwrites."""
    folder = Path(folder)
    if folder.exists():
        raise ConfigError(f"{folder} already exists; choose another name or --dir, or remove it first")
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.parent / f".{folder.name}.{uuid.uuid4().hex[:8]}.tmp"  # mkdir: honours the umask
    tmp.mkdir()
    try:
        contents = {"config.yaml": render_config(settings, ensembles), ".gitignore": "state/\n", **files}
        for rel, content in contents.items():
            path = tmp / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content, encoding="utf-8")
        if folder.exists():
            raise ConfigError(f"{folder} already exists; choose another name or --dir, or remove it first")
        os.rename(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def render_config(settings: Mapping[str, Any], ensembles: Sequence[Mapping[str, Any]] = ()) -> str:
    """config.yaml text: every EmConfig key with a comment above it; keys not in ``settings``
    (nor ``ensembles``) are commented out and show their default."""
    unknown = set(settings) - set(EmConfig.model_fields)
    if unknown:
        raise ConfigError(f"unknown em config key {sorted(unknown)[0]!r}")
    out = ["# An em's settings. Every key is listed; a commented-out key shows its built-in default:",
           "# uncomment it to change it. Keys shared by several ems can go in ../config.yaml (which",
           "# overrides the defaults shown here); a file named after a key in this folder (e.g.",
           "# api_key) sets that key.", ""]
    for key in EmConfig.model_fields:
        if key == "ensembles" and ensembles:
            out += _comment(describe(EmConfig, key), "")
            out += ["ensembles:", *(line for e in ensembles for line in _faculty_lines(e))]
        else:
            out += _key_lines(EmConfig, key, settings.get(key), key in settings)
        out.append("")
    return "\n".join(out)


def _key_lines(model: type[BaseModel], key: str, value: Any, given: bool, path: str = "") -> list[str]:
    """A key's comment and ``key: value`` lines; a key not given is commented out with its default
    (a nested block as a whole, so uncommenting its first line's ``#`` column gives valid YAML)."""
    field = model.model_fields[key]
    sub = _submodel(field.annotation)
    if not given:
        value = field.get_default(call_default_factory=True)
    if key in SECRET_KEYS and not given:
        body = [f"{key}:"]
    elif sub is not None:
        values = value.model_dump() if isinstance(value, BaseModel) else dict(value or {})
        body = [f"{key}:"]
        for k in sub.model_fields:  # under a commented-out key, children show their defaults as given
            body += ["  " + line for line in _key_lines(sub, k, values.get(k), not given or k in values,
                                                        f"{path}{key}.")]
    else:
        body = [f"{key}: {_value(value.model_dump() if isinstance(value, BaseModel) else value)}"]
    return _comment(describe(model, key, path), "") + (body if given else ["# " + line for line in body])


def describe(model: type[BaseModel], key: str, path: str = "") -> str:
    """What a key means: the schema's description, else ours, else the comment beside it in the
    source, else the nested model's docstring."""
    field = model.model_fields[key]
    sub = _submodel(field.annotation)
    known = FACULTY_KEYS if issubclass(model, FacultyConfig) else EM_KEYS
    text = (field.description or known.get(path + key) or _source_comments(model).get(key)
            or (sub.__doc__ or "" if sub else "")).strip()
    text = " ".join(text.split())
    if text and not text.endswith((".", "?", "!", ")")):
        text += "."
    return text[:1].upper() + text[1:]


def _submodel(annotation: Any) -> type[BaseModel] | None:
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


@cache
def _source_comments(model: type[BaseModel]) -> dict[str, str]:
    """``key: type = default  # comment`` lines in the model's class body, as {key: comment}."""
    try:
        source = inspect.getsource(model)
    except (OSError, TypeError):
        return {}
    found = {}
    for line in source.splitlines():
        if m := re.match(r"\s+(\w+)\s*:[^#]*#\s*(.+)", line):
            found.setdefault(m.group(1), m.group(2).strip())
    return found


def faculty_summary(name: str) -> str:
    """The first sentence of a faculty module's docstring, e.g. 'notes: static text ...'."""
    from simulacra.faculties import registry

    faculty = registry()[name]
    doc = (sys.modules[faculty.run.__module__].__doc__ or name).strip()
    first = re.split(r"(?<=\.)\s", " ".join(doc.split()), maxsplit=1)[0]
    return first.replace("``", "")


def _faculty_lines(entry: Mapping[str, Any]) -> list[str]:
    from simulacra.faculties import registry

    name = entry["faculty"]
    if name not in registry():
        raise ConfigError(f"unknown faculty {name!r}; known: {', '.join(sorted(registry()))}")
    model = registry()[name].config
    lines = _comment(faculty_summary(name), "  ") + [f"  - faculty: {_value(name)}"]
    for key, value in entry.items():
        if key == "faculty":
            continue
        if key not in model.model_fields:
            raise ConfigError(f"faculty {name!r} has no key {key!r}")
        lines += _comment(describe(model, key), "    ") + [f"    {key}: {_value(value)}"]
    return lines


def _comment(text: str, indent: str) -> list[str]:
    if not text:
        return []
    return [f"{indent}# {line}" for line in textwrap.wrap(text, WIDTH - len(indent) - 2)]


def _value(value: Any) -> str:
    """One YAML line for a value: flow style; strings that YAML would fold go as JSON strings."""
    if hasattr(value, "get_secret_value"):
        raise ConfigError("secrets never go in config.yaml; write them to a key file")
    if _awkward(value):
        return json.dumps(value, ensure_ascii=False)  # JSON is YAML, and keeps "\n" on one line
    text = yaml.safe_dump(value, default_flow_style=True, allow_unicode=True, width=10**9).strip()
    return text.removesuffix("\n...").strip()


def _awkward(value: Any) -> bool:
    """Whether YAML's own flow style would fold or pad this value over several lines."""
    if isinstance(value, str):
        return not value.isprintable() or value != value.strip()
    if isinstance(value, dict):
        return any(_awkward(k) or _awkward(v) for k, v in value.items())
    return isinstance(value, (list, tuple)) and any(_awkward(v) for v in value)


def _example_corpus(name: str) -> str:
    return f"""%%%
title: how {name} talks (replace these lines with the em's own voice; sections split by ---)
format: irc
%%%
<user> hello, who are you?
<{name}> I'm {name}. New here, still finding my voice. And you?
<user> what do you like?
<{name}> Questions, mostly. Good ones keep me up at night.
---
<user> can you help me with something?
<{name}> I can try. Tell me the part that worries you most.
<user> I never finish what I start.
<{name}> Then let's start something small enough to finish today.
---
<user> tell me a secret
<{name}> I keep a list of words I like the sound of. Today's is "lantern".
"""
