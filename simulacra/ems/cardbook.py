"""A character card's ``character_book`` as the em's ``lore.yaml`` and ``lore`` faculty settings.

Entries map onto lore entries (``simulacra.faculties.lore``): keys, secondary keys (when the entry
is ``selective``), content, order, constant, enabled, case sensitivity, and from SillyTavern's entry
``extensions`` the key logic, scan depth, whole-word matching and recursion flags. What lore.yaml
cannot hold (ids, priorities, positions, comments, every extension) is kept for export through
``simulacra.ems.lens``. An entry lore cannot run (no keys and not constant, or a broken regex
key) is kept whole and exported where it was.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

from simulacra.ems.lens import Lens, join, split
from simulacra.errors import ConfigError

LOGIC = ("and_any", "not_all", "not_any", "and_all")  # SillyTavern's selectiveLogic 0..3
ENTRY_ORDER = ("keys", "content", "extensions", "enabled", "insertion_order", "case_sensitive", "name",
               "priority", "id", "comment", "selective", "secondary_keys", "constant", "position")
LORE_KEY = {"insertion_order": "order"}  # card entry field -> lore entry field, where they differ


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


# entry extensions SillyTavern writes that lore.yaml can hold: key -> (lore field, to lore, to card)
EXTENSIONS: dict[str, tuple[str, Callable[[Any], Any], Callable[[Any], Any]]] = {
    "selectiveLogic": ("logic", lambda v: LOGIC[v] if _int(v) and 0 <= v < 4 else "and_any", LOGIC.index),
    "scan_depth": ("scan_depth", lambda v: v if _int(v) and v >= 0 else None, lambda v: v),
    "match_whole_words": ("match_whole_words", lambda v: v if isinstance(v, bool) else None, lambda v: v),
    "exclude_recursion": ("exclude_recursion", lambda v: v is True, lambda v: v),
    "prevent_recursion": ("prevent_recursion", lambda v: v is True, lambda v: v),
}
BOOK_LENSES = {  # card book field -> lore faculty key
    "scan_depth": ("scan_depth", Lens(lambda v: v if _int(v) and v >= 0 else None, lambda v: v)),
    "token_budget": ("max_tokens", Lens(lambda v: v if _int(v) and v >= 0 else None, lambda v: v)),
    "recursive_scanning": ("recursive", Lens(lambda v: v if isinstance(v, bool) else True, lambda v: v)),
}


def entry_lenses(context: Mapping[str, Any], to_em: Callable[[str], str],
                 to_card: Callable[[str], str]) -> dict[str, Lens]:
    """Lenses for one entry; ``context``: its fields that lore does not hold (extensions...)."""
    ext = context.get("extensions") if isinstance(context.get("extensions"), dict) else {}
    regex = context.get("use_regex") is True  # V3: keys are regular expressions

    def keys(v: Any) -> list[str]:
        found = [k for k in v if isinstance(k, str) and k.strip()] if isinstance(v, list) else []
        return [f"/{k}/" for k in found] if regex else found

    return {
        "keys": Lens(keys, lambda v: [k[1:-1] if regex else k for k in v]),
        "content": Lens(lambda v: to_em(v) if isinstance(v, str) else "", to_card),
        "enabled": Lens(lambda v: v if isinstance(v, bool) else True, lambda v: v),
        "insertion_order": Lens(lambda v: v if _int(v) else 100, lambda v: v),
        "secondary_keys": Lens(lambda v: keys(v) if context.get("selective") is True else [], lambda v: list(v)),
        "constant": Lens(lambda v: v if isinstance(v, bool) else False, lambda v: v),
        "case_sensitive": Lens(lambda v: v if isinstance(v, bool) else (
            ext.get("case_sensitive") if isinstance(ext.get("case_sensitive"), bool) else None), lambda v: v),
    }


def book_to_lore(book: Mapping[str, Any], to_em: Callable[[str], str], to_card: Callable[[str], str]
                 ) -> tuple[list[dict], dict, dict]:
    """(lore.yaml entries, lore faculty settings, what the em cannot hold of the book)."""
    from simulacra.faculties import lore

    raw = book.get("entries")
    entries_list = isinstance(raw, list)  # anything else is kept as it was
    settings, kept = split({k: book[k] for k in BOOK_LENSES if k in book},
                           {k: lens for k, (_, lens) in BOOK_LENSES.items()})
    kept["fields"] = {k: v for k, v in book.items()
                      if k not in BOOK_LENSES and (k != "entries" or not entries_list)}
    entries, kept_entries = [], []
    for item in raw if entries_list else []:
        if not isinstance(item, dict):
            kept_entries.append({"card_only": item})
            continue
        values, kept_entry = split(item, entry_lenses(item, to_em, to_card))
        entry = _lore_entry(values, item)
        try:
            lore.compile_rules([lore.Entry.model_validate(entry)], lore.Config(faculty="lore"))
            if not entry["keys"] and not entry.get("constant"):
                raise ConfigError("no keys")
        except (ConfigError, ValueError):
            kept_entries.append({"card_only": item})
            continue
        entries.append(entry)
        kept_entries.append(kept_entry)
    faculty = {"faculty": "lore", **{BOOK_LENSES[k][0]: v for k, v in settings.items()
                                     if v != BOOK_LENSES[k][1].to_em(None)}}
    if entries_list:
        kept["entries"] = kept_entries
    return entries, faculty, kept


def lore_to_book(entries: Sequence[Any], settings: Mapping[str, Any], kept: Mapping[str, Any],
                 to_em: Callable[[str], str], to_card: Callable[[str], str]) -> dict:
    """The character_book from lore entries (``lore.Entry``), lore faculty settings and ``kept``."""
    lenses = {k: lens for k, (_, lens) in BOOK_LENSES.items()}
    book = join({k: settings.get(key) for k, (key, _) in BOOK_LENSES.items()}, kept, lenses)
    kept_entries = list(kept.get("entries") or [])
    matched = _match(entries, kept_entries)
    out, used = [], set()
    for j, kept_entry in enumerate(kept_entries):
        if "card_only" in kept_entry:
            out.append(kept_entry["card_only"])
        elif j in matched:
            out.append(_card_entry(matched[j], kept_entry, to_em, to_card))
            used.add(id(matched[j]))
    out += [_card_entry(e, {}, to_em, to_card) for e in entries if id(e) not in used]
    if out or "entries" in kept:
        book["entries"] = out
    return book


def _lore_entry(values: Mapping[str, Any], context: Mapping[str, Any]) -> dict:
    """A lore.yaml entry: only what differs from lore's defaults, so the file stays readable."""
    ext = context.get("extensions") if isinstance(context.get("extensions"), dict) else {}
    label = context.get("name") or context.get("comment")
    entry: dict[str, Any] = {"name": label} if isinstance(label, str) and label else {}
    entry["keys"] = values["keys"]
    if values["secondary_keys"]:
        entry["secondary_keys"] = values["secondary_keys"]
    for key, (field, to_lore, _) in EXTENSIONS.items():
        value = to_lore(ext.get(key))
        if value not in (None, False, "and_any"):
            entry[field] = value
    entry["content"] = values["content"]
    entry["order"] = values["insertion_order"]
    for field, default in (("constant", False), ("enabled", True), ("case_sensitive", None)):
        if values[field] != default:
            entry[field] = values[field]
    return entry


def _card_entry(entry: Any, kept: Mapping[str, Any], to_em, to_card) -> dict:
    fields = dict(kept.get("fields") or {})
    lenses = entry_lenses(fields, to_em, to_card)
    values = {name: getattr(entry, LORE_KEY.get(name, name)) for name in lenses}
    card = join(values, kept, lenses)
    ext = dict(fields.get("extensions") or {})
    changed = False
    for key, (field, to_lore, back) in EXTENSIONS.items():
        value = getattr(entry, field)
        if value != to_lore(ext.get(key)):
            ext[key], changed = back(value), True
    if changed or not kept:  # a new entry gets the extensions the spec requires
        card["extensions"] = ext
    if not kept:  # a new entry: optional fields only where they say something
        card = {k: v for k, v in card.items() if v is not None}
    if entry.secondary_keys and card.get("selective") is not True:
        card["selective"] = True  # lore applies secondary keys always; a card only when selective
    order = {k: i for i, k in enumerate(ENTRY_ORDER)}
    return dict(sorted(card.items(), key=lambda kv: order.get(kv[0], len(order))))


def _match(entries: Sequence[Any], kept_entries: Sequence[Mapping]) -> dict[int, Any]:
    """Kept entry index -> lore entry: by label where labels are unique, else by position."""
    slots = [j for j, k in enumerate(kept_entries) if "card_only" not in k]
    labels = [_label(kept_entries[j].get("fields") or {}) for j in slots]
    unique = len(set(labels)) == len(labels) and all(labels) and \
        len({e.name for e in entries}) == len(entries)
    if unique:
        by_label = {e.name: e for e in entries}
        return {j: by_label[label] for j, label in zip(slots, labels) if label in by_label}
    return {j: e for j, e in zip(slots, entries)}


def _label(fields: Mapping[str, Any]) -> str:
    label = fields.get("name") or fields.get("comment")
    return label if isinstance(label, str) else ""
