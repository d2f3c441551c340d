"""SillyTavern character cards in and out of em folders (``simulacra import-card`` / ``export-card``).

Where a card's fields go in the em folder:

    description, personality, scenario,   notes/<field>.txt   (notes faculties; personality and
    system_prompt                                               scenario under a header)
    post_history_instructions             notes/post_history_instructions.txt (an author's note, depth 0)
    mes_example                           <name>.chr/examples.txt (<START> blocks as IRC sections)
    first_mes                             history.txt (the em's opening line)
    character_book                        lore.yaml + the lore faculty's settings
    the card's image                      card.png
    everything else                       card.yaml (tags, creator, creator_notes, alternate
                                          greetings, extensions, unknown fields, book extras)

``{{char}}`` / ``{{user}}`` become the em's name and ``user``. ``card.yaml`` also keeps the original
text of any field that the conversion changed, so exporting an untouched em gives back the card
it came from, field for field, and exporting an edited one carries the edits
(``simulacra.ems.lens``). Cards are read from V1/V2/V3 JSON, PNG (``ccv3`` chunk preferred over
``chara``) and ``.charx`` zips; export writes a V2 card as JSON or PNG.
"""
from __future__ import annotations

import base64
import binascii
import io
import json
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from simulacra.chat.formats import get_format
from simulacra.ems import png
from simulacra.ems.cardbook import book_to_lore, lore_to_book
from simulacra.ems.config import read_text, read_yaml
from simulacra.ems.lens import Lens, join, split
from simulacra.ems.scaffold import write_em
from simulacra.errors import ConfigError, InputError
from simulacra.storage import atomic_write
from simulacra.types import Message

V1, V2, V3 = "chara_card_v1", "chara_card_v2", "chara_card_v3"
V2_DEFAULTS = {"name": "", "description": "", "personality": "", "scenario": "", "first_mes": "",
               "mes_example": "", "creator_notes": "", "system_prompt": "", "post_history_instructions": "",
               "alternate_greetings": [], "character_book": None, "tags": [], "creator": "",
               "character_version": "", "extensions": {}}
NOTES = {"system_prompt": "notes/system_prompt.txt", "description": "notes/description.txt",
         "personality": "notes/personality.txt", "scenario": "notes/scenario.txt",
         "post_history_instructions": "notes/post_history_instructions.txt"}
USER = "user"
SIDECAR, IMAGE, LORE, HISTORY, EXAMPLES = "card.yaml", "card.png", "lore.yaml", "history.txt", "examples.txt"
MAX_CHARX_BYTES = 256 * 2**20
_CHAR = re.compile(r"\{\{\s*char\s*\}\}|<BOT>", re.I)
_USER = re.compile(r"\{\{\s*user\s*\}\}|<USER>", re.I)
_START = re.compile(r"^[ \t]*<START>[ \t]*$", re.I | re.M)


@dataclass
class Card:
    spec: str  # chara_card_v1 | v2 | v3
    data: dict[str, Any]
    spec_version: str | None = None
    image: bytes | None = None  # the PNG without its card chunks
    assets: dict[str, bytes] = field(default_factory=dict)  # .charx files besides card.json


# -- reading ---------------------------------------------------------------------------------------

def read_card(path: str | Path) -> Card:
    """A card from JSON, PNG or .charx; a malformed one raises InputError saying what is wrong."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise InputError(f"cannot read card {path}: {e.strerror}") from None
    if png.is_png(raw):
        return _from_png(raw, path)
    if raw.startswith(b"PK\x03\x04") or path.suffix.lower() == ".charx":
        return _from_charx(raw, path)
    return parse_card(_json(raw, path), path)


def parse_card(obj: Any, source: str | Path) -> Card:
    if not isinstance(obj, dict):
        raise InputError(f"{source}: a character card is a JSON object, not a {type(obj).__name__}")
    spec = obj.get("spec")
    if spec in (V2, V3):
        data = obj.get("data")
        if not isinstance(data, dict):
            raise InputError(f"{source}: a {spec} card needs a 'data' object")
    elif spec is not None:
        raise InputError(f"{source}: unknown card spec {spec!r}; expected {V2} or {V3} (or a V1 card)")
    else:
        spec, data = V1, obj
    name = data.get("name")
    if not isinstance(name, str) or not _em_name(name):
        raise InputError(f"{source}: not a usable character card: it has no name ('name' field)")
    return Card(spec, data, obj.get("spec_version"))


def _json(raw: bytes, source: str | Path) -> Any:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InputError(f"{source}: not UTF-8 text (bad byte at offset {e.start}); a card is UTF-8 JSON") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"{source}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})") from None


def _from_png(raw: bytes, path: Path) -> Card:
    texts = png.read_texts(raw, path)
    key = "ccv3" if "ccv3" in texts else "chara" if "chara" in texts else None
    if key is None:
        raise InputError(f"{path}: this PNG holds no character card (no 'chara' or 'ccv3' text chunk)")
    try:
        payload = base64.b64decode("".join(texts[key].split()), validate=True)
    except (binascii.Error, ValueError):
        raise InputError(f"{path}: the '{key}' chunk is not base64-encoded JSON") from None
    card = parse_card(_json(payload, f"{path} ('{key}' chunk)"), path)
    card.image = png.with_texts(raw, {}, drop={"chara", "ccv3"}, source=path)
    return card


def _from_charx(raw: bytes, path: Path) -> Card:
    try:
        archive = zipfile.ZipFile(io.BytesIO(raw))
    except zipfile.BadZipFile:
        raise InputError(f"{path}: not a valid .charx file (a zip holding card.json)") from None
    with archive:
        if "card.json" not in archive.namelist():
            raise InputError(f"{path}: no card.json in this .charx")
        if sum(i.file_size for i in archive.infolist()) > MAX_CHARX_BYTES:
            raise InputError(f"{path}: the .charx unpacks to over {MAX_CHARX_BYTES >> 20} MiB; refusing it")
        card = parse_card(_json(archive.read("card.json"), f"{path}:card.json"), path)
        for info in archive.infolist():
            name = PurePosixPath(info.filename)
            if info.is_dir() or info.filename == "card.json" or name.is_absolute() or ".." in name.parts:
                continue
            card.assets[str(name)] = archive.read(info)
    assets = card.data.get("assets") if isinstance(card.data.get("assets"), list) else []
    icons = [a.get("uri", "") for a in assets if isinstance(a, dict) and a.get("type") == "icon"]
    for uri in icons + list(card.assets):
        image = card.assets.get(re.sub(r"^embed+ed://", "", str(uri)))
        if image and png.is_png(image):
            card.image = image
            break
    return card


# -- importing -------------------------------------------------------------------------------------

def import_card(path: str | Path, parent: str | Path = ".") -> Path:
    """Turn a card into a new em folder under ``parent``; returns the folder."""
    card = read_card(path)
    name = _em_name(card.data["name"])
    book = card.data.get("character_book")
    original = {k: v for k, v in card.data.items() if not (k == "character_book" and isinstance(book, dict))}
    values, kept = split(original, top_lenses(name))
    files: dict[str, str | bytes] = {rel: values[f] for f, rel in NOTES.items() if values[f] is not None}
    if values["first_mes"] is not None:
        files[HISTORY] = values["first_mes"]
    if values["mes_example"] is not None:
        files[f"{name}.chr/{EXAMPLES}"] = values["mes_example"]
    sidecar: dict[str, Any] = {"spec": card.spec, "spec_version": card.spec_version,
                               "source": Path(path).name, "data": kept}
    lore_faculty = None
    if isinstance(book, dict):
        entries, lore_faculty, sidecar["character_book"] = book_to_lore(book, *_macros(name))
        files[LORE] = _dump({"entries": entries}, "# from the card's character book; see simulacra/faculties/lore.py\n")
    if card.image:
        files[IMAGE] = card.image
    files.update({f"assets/{rel}": blob for rel, blob in card.assets.items()})
    files[SIDECAR] = _dump(sidecar, "# What the em folder cannot hold of the character card it came from, kept for\n"
                                    "# `simulacra export-card`. Edit the em's files, not this one.\n")
    return write_em(Path(parent) / slug(name), {"name": name}, _ensembles(name, files, lore_faculty), files)


def _ensembles(name: str, files: dict, lore_faculty: dict | None) -> list[dict]:
    def notes(field: str, **extra) -> list[dict]:
        return [{"faculty": "notes", "file": NOTES[field], **extra}] if NOTES[field] in files else []

    ensembles = notes("system_prompt") + notes("description") + \
        notes("personality", header=f"{name}'s personality: ") + notes("scenario", header="Scenario: ")
    ensembles += [lore_faculty] if lore_faculty else []
    ensembles += [{"faculty": "character", "max_items": 6}] if f"{name}.chr/{EXAMPLES}" in files else []
    ensembles += [{"faculty": "history"}] if HISTORY in files else []
    return ensembles + notes("post_history_instructions", depth=0)


# -- exporting -------------------------------------------------------------------------------------

def card_data(folder: str | Path) -> dict[str, Any]:
    """The V2 ``data`` of an em: from its files, and from card.yaml if it came from a card."""
    from simulacra.ems.em import Em
    from simulacra.faculties import lore

    em = Em.load(folder)
    folder, name = em.folder, em.name
    sidecar = read_yaml(folder / SIDECAR) if (folder / SIDECAR).is_file() else {}
    values: dict[str, Any] = {"name": name, **{f: _read(folder / rel) for f, rel in NOTES.items()}}
    values["first_mes"] = _read(folder / HISTORY)
    values["mes_example"] = _read(em.corpus_folder / EXAMPLES)
    if not sidecar:  # a native em: its persona describes it, its whole corpus shows how it talks
        values["description"] = values["description"] or _read(folder / "notes/persona.txt")
        files = sorted(em.corpus_folder.glob("*.txt")) if em.corpus_folder.is_dir() else []
        values["mes_example"] = "\n---\n".join(_body(read_text(p)) for p in files) or None
    data = join(values, sidecar.get("data") or {}, top_lenses(name))
    settings = next((c for f, c in em.faculties if f.name == "lore"), None) or lore.Config(faculty="lore")
    lore_path = folder / settings.file
    if lore_path.is_file() or "character_book" in sidecar:
        entries = lore.load_entries(lore_path) if lore_path.is_file() else []
        data["character_book"] = lore_to_book(entries, settings.model_dump(), sidecar.get("character_book") or {},
                                              *_macros(name))
    data = {**{k: v for k, v in V2_DEFAULTS.items() if v is not None}, **data}
    order = {k: i for i, k in enumerate(V2_DEFAULTS)}
    return dict(sorted(data.items(), key=lambda kv: order.get(kv[0], len(order))))


def export_card(folder: str | Path, output: str | Path | None = None, as_png: bool = False) -> Path:
    """Write the em as a V2 card (JSON, or PNG with a ``chara`` chunk); returns the file written."""
    data = card_data(folder)
    card = {"spec": V2, "spec_version": "2.0", "data": data}
    as_png = as_png or (output is not None and Path(output).suffix.lower() == ".png")
    target = Path(output) if output else Path(f"{slug(data['name'])}.{'png' if as_png else 'json'}")
    if as_png:
        image_path = Path(folder) / IMAGE
        image = image_path.read_bytes() if image_path.is_file() else png.blank_png()
        payload = base64.b64encode(json.dumps(card, ensure_ascii=False).encode()).decode("ascii")
        content = png.with_texts(image, {"chara": payload}, drop={"chara", "ccv3"}, source=image_path)
    else:
        content = (json.dumps(card, ensure_ascii=False, indent=2) + "\n").encode()
    atomic_write(target, content)
    return target


# -- field mappings --------------------------------------------------------------------------------

def top_lenses(name: str) -> dict[str, Lens]:
    to_em, to_card = _macros(name)
    text = Lens(lambda v: to_em(v) + "\n" if isinstance(v, str) and v else None,
                lambda v: to_card(v.removesuffix("\n")) if v is not None else "")
    return {"name": Lens(lambda v: _em_name(v) if isinstance(v, str) else name, lambda v: v),
            **{f: text for f in NOTES},
            "first_mes": Lens(lambda v: greeting_to_history(v, name) if isinstance(v, str) and v else None,
                              lambda v: history_to_greeting(v, name)),
            "mes_example": Lens(lambda v: examples_to_irc(v, name) if isinstance(v, str) else None,
                                lambda v: irc_to_examples(v, name))}


def greeting_to_history(text: str, name: str) -> str:
    return get_format("irc").render([Message(name, _macros(name)[0](text))])


def history_to_greeting(text: str | None, name: str) -> str:
    messages = get_format("irc").parse(text or "")
    first = next((m for m in messages if m.author == name), None)
    return _macros(name)[1](first.content) if first else ""


def examples_to_irc(text: str, name: str) -> str | None:
    """``<START>`` blocks of ``{{user}}: ...`` / ``{{char}}: ...`` lines as IRC sections."""
    to_em = _macros(name)[0]
    who = rf"\{{\{{\s*(?:char|user)\s*\}}\}}|<BOT>|<USER>|{re.escape(name)}|{USER}"
    speaker = re.compile(rf"\s*({who})\s*:\s?(.*)", re.I)
    sections = []
    for block in _START.split(text):
        lines: list[str] = []
        for line in block.splitlines():
            if m := speaker.fullmatch(line):
                who = USER if _USER.fullmatch(m.group(1)) or m.group(1).lower() == USER else name
                lines.append(f"<{who}> {to_em(m.group(2))}".rstrip())
            elif line.strip():
                lines.append(to_em(line) if lines else f"-!- {to_em(line.strip())}")
        if lines:
            sections.append("\n".join(lines))
    if not sections:
        return None
    header = "%%%\ntitle: example messages from the character card\nformat: irc\n%%%\n"
    return header + "\n---\n".join(sections) + "\n"


def irc_to_examples(text: str | None, name: str) -> str:
    """Corpus text (IRC sections, optional %%% header) back to ``<START>`` blocks."""
    if not text:
        return ""
    blocks, section = [], []
    for line in _body(text).splitlines() + ["---"]:
        if line.strip() != "---":
            section.append(line)
            continue
        messages = get_format("irc").parse("\n".join(section))
        section = []
        if messages:
            blocks.append("<START>\n" + "\n".join(_example_line(m, name) for m in messages))
    return "\n".join(blocks)


def _body(text: str) -> str:
    """A corpus file's text without its %%% header."""
    lines = text.splitlines()
    if lines and lines[0].strip() == "%%%":
        end = next((i for i in range(1, len(lines)) if lines[i].strip() == "%%%"), 0)
        lines = lines[end + 1:]
    return "\n".join(lines)


def _example_line(m: Message, name: str) -> str:
    content = _macros(name)[1](m.content)
    if m.author is None:
        return content
    who = "{{char}}" if m.author == name else "{{user}}" if m.author == USER else m.author
    return f"{who}: {content}"


def _macros(name: str):
    """(card text -> em text, em text -> card text) for an em called ``name``."""
    own, user = re.compile(rf"(?<!\w){re.escape(name)}(?!\w)"), re.compile(rf"(?<!\w){USER}(?!\w)")
    return (lambda t: _USER.sub(USER, _CHAR.sub(lambda _: name, t)),
            lambda t: user.sub("{{user}}", own.sub("{{char}}", t)))


def _em_name(name: str) -> str:
    """A card name as an em name: one line, no characters IRC logs or folder names reserve."""
    return " ".join(re.sub(r"[<>/\\\x00-\x1f]", " ", name).split())


def slug(name: str) -> str:
    return re.sub(r"[^\w.-]+", "-", name.lower()).strip("-.") or "em"


def _read(path: Path) -> str | None:
    return read_text(path) if path.is_file() else None


def _dump(data: Any, comment: str) -> str:
    try:
        return comment + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
    except yaml.YAMLError as e:
        raise ConfigError(f"cannot write card data as YAML: {e}") from None
