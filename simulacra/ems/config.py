"""The em's config.yaml schema, its overlays and its one-line errors (DESIGN.md §3).

Defaults overlay in this order: built-in → the shared ``config.yaml`` of the folder holding the em
(e.g. ``ems/config.yaml``) → the em's own ``config.yaml`` → files named after a key inside the em
folder (a file ``discord_token`` sets ``discord_token``). Secrets are ``SecretStr``: they never
appear in reprs, logs or printed prompts.
"""
from __future__ import annotations

import difflib
import logging
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from simulacra.errors import ConfigError

log = logging.getLogger(__name__)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class SectionConfig(Strict):
    """How a prompt section is laid out; every faculty config and the history share these keys."""

    header: str = ""
    separator: str = "\n"
    footer: str = "\n"
    max_tokens: int | None = Field(None, ge=0)
    max_items: int | None = Field(None, ge=0)
    # prepend: items yielded first end up nearest the conversation (Chapter II's "operator")
    operator: Literal["prepend", "append"] = "prepend"


class FacultyConfig(SectionConfig):
    """Base of every faculty's config; faculties subclass it with their own keys."""

    faculty: str
    recent_message_attention: int = Field(7, ge=0, description="how many recent messages the faculty reads")


class MemoryConfig(Strict):
    """Long-term memory (layer 5): observations after each exchange, reflection past a threshold."""

    enabled: bool = False
    recency: float = 1.0  # weights of the three retrieval scores (Generative Agents)
    importance: float = 1.0
    relevance: float = 1.0
    decay: float = Field(0.995, gt=0, le=1, description="recency decay per hour since last access")
    rate_importance: bool = True  # ask the model to rate 1-10; falls back to a heuristic
    reflect_threshold: float = Field(30.0, gt=0, description="summed importance that triggers reflection")


class ThinkingConfig(Strict):
    """Inner monologue: a private thought before each reply, optionally a critique-and-revise pass."""

    enabled: bool = False
    max_tokens: int = Field(80, ge=1)
    critique: bool = False
    show: bool = False  # let interfaces show thoughts (never by default)


class ToolsConfig(Strict):
    allow: list[str] = []  # tool names the em may use; empty: none
    confirm: list[str] = []  # tools that need the person's yes before each call
    read_root: str | None = None  # the folder read_file may read (relative to the em folder)
    timeout: float = Field(10.0, gt=0)
    max_steps: int = Field(6, ge=1)
    mcp_servers: dict[str, dict[str, Any]] = {}  # name -> {command, args, env} or {url}


class EmConfig(Strict):
    name: str = ""
    continuation_model: str = ""  # a model spec; empty: $SIMULACRA_MODEL or the default model
    continuation_max_tokens: int = Field(120, ge=1)
    total_max_tokens: int = Field(8192, ge=64)
    temperature: float = Field(0.8, ge=0)
    top_p: float = Field(0.95, gt=0, le=1)
    top_k: int = Field(0, ge=0)
    min_p: float = Field(0.05, ge=0, le=1)
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    repetition_penalty: float = Field(1.1, gt=0)
    logit_bias: dict[int, float] = {}
    seed: int | None = None
    stop_sequences: list[str] = []
    message_history_format: str = "irc"
    message_history_header: str = ""
    message_history_separator: str = ""  # rendered messages end with their own newline
    message_history_footer: str = ""
    recency_window: int = Field(35, gt=0)
    ensembles: list[dict[str, Any]] = []  # validated per faculty by simulacra.faculties.parse_faculty
    mufflers: list[str | dict[str, Any]] = ["has_url", "too_short", "repeats_prompt"]
    max_retries: int = Field(3, ge=0)
    representation_model: str = "all-minilm-l6-v2"
    interfaces: list[dict[str, Any]] = []
    memory: MemoryConfig = MemoryConfig()
    thinking: ThinkingConfig = ThinkingConfig()
    tools: ToolsConfig = ToolsConfig()
    # secrets: set them in key files (a file named `api_key` in the em folder) or the environment
    api_key: SecretStr | None = None
    discord_token: SecretStr | None = None

    @field_validator("message_history_format", mode="before")
    @classmethod
    def _format_name(cls, v: Any) -> str:
        # Chapter II writes formats as objects ({name: irc, ...}); only the name matters here
        return v.get("name", "irc") if isinstance(v, dict) else v


# Keys Chapter II ems use that simulacra accepts and does not act on (logged once at load).
CHAPTER_II_IGNORED = {
    "emname", "name_prefix", "name_prefix_optional", "split_message", "scene_break",
    "prevent_scene_break", "prevent_gpt_topic_change", "no_repeat_ngram_size", "best_of",
    "continuation_model_local_tokenization", "continuation_options", "vendors",
    "message_history_max_tokens", "message_history_operator", "exa_search_api_key",
    "novelai_api_key", "active_interfaces",
}
SECRET_KEYS = {"api_key", "discord_token"}


def load_config(folder: Path) -> EmConfig:
    """Read and overlay an em's config; raise ConfigError with one line on any problem."""
    data: dict[str, Any] = {}
    shared = folder.parent / "config.yaml"
    for path in (shared, folder / "config.yaml"):
        if path.is_file():
            data = overlay(data, read_yaml(path))
    for key in EmConfig.model_fields:
        key_file = folder / key
        if key_file.is_file():
            data[key] = read_text(key_file).strip()
    data.setdefault("name", folder.name)
    ignored = sorted(CHAPTER_II_IGNORED & data.keys())
    if ignored:
        log.info("%s: Chapter II keys not used by simulacra: %s", folder.name, ", ".join(ignored))
    data = {k: v for k, v in data.items() if k not in CHAPTER_II_IGNORED}
    return validate(EmConfig, data, folder / "config.yaml")


def validate(model: type[BaseModel], data: dict, source: Path | str, where: str = ""):
    """Validate data against a schema; the first problem becomes a one-line ConfigError."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: {where or 'the file'} must be a mapping of keys to values")
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise ConfigError(describe_error(e, model, source, where)) from None


def describe_error(e: ValidationError, model: type[BaseModel], source: Path | str, where: str) -> str:
    err = e.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    place = f"{where}.{loc}" if where else loc
    if err["type"] == "extra_forbidden":
        key = str(err["loc"][-1])
        valid = list(_fields_at(model, err["loc"][:-1]))
        close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
        hint = f" (did you mean '{close[0]}'?)" if close else f"; valid keys: {', '.join(sorted(valid))}"
        return f"{source}: unknown key '{place}'{hint}"
    value = "" if "value" in loc else f" (got {_short(err.get('input'))})"
    return f"{source}: {place}: {err['msg']}{value}"


def _fields_at(model: type[BaseModel], loc: tuple) -> dict:
    fields = model.model_fields
    for part in loc:
        if isinstance(part, int) or part not in fields:
            continue
        sub = fields[part].annotation
        fields = getattr(sub, "model_fields", fields)
    return fields


def _short(value: Any) -> str:
    if isinstance(value, SecretStr) or value is None:
        return "nothing" if value is None else "a secret"
    text = repr(value)
    return text if len(text) < 40 else text[:37] + "..."


def overlay(base: dict, update: dict) -> dict:
    """Merge update onto base: mappings merge recursively, everything else replaces."""
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = overlay(out[key], value)
        else:
            out[key] = value
    return out


def read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e.strerror}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise ConfigError(f"{path}:{line}: not UTF-8 text; save the file as UTF-8") from None


def read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(read_text(path))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f":{mark.line + 1}" if mark else ""
        problem = getattr(e, "problem", None) or "invalid YAML"
        raise ConfigError(f"{path}{at}: {problem}; check indentation and quoting") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected keys and values (a YAML mapping), got a {type(data).__name__}")
    return data
