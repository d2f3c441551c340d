"""Lenses: two-way field mappings between a character card and an em's files, lossless on round trip.

A card field becomes an em value (a file's text, a lore key, a config value) through ``to_em``,
and comes back through ``to_card``. Where ``to_card(to_em(x)) != x`` (macros replaced, a format
that drops whitespace, a value absent from the card), ``split`` keeps the original; ``join`` gives
the original back while the em value is still what the original became, and ``to_card`` of the
em value once someone has edited it. So an untouched em exports its card exactly, and an edited
one exports its edits.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping


@dataclass(frozen=True)
class Lens:
    to_em: Callable[[Any], Any]  # card value (None: absent) -> em value
    to_card: Callable[[Any], Any]  # em value -> card value


def split(original: Mapping[str, Any], lenses: Mapping[str, Lens]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(em values by field, what the em cannot hold): ``fields`` the lenses don't map, verbatim;
    ``verbatim`` originals that do not survive the round trip; ``absent`` lensed fields not given."""
    em: dict[str, Any] = {}
    kept: dict[str, Any] = {"fields": {k: v for k, v in original.items() if k not in lenses}}
    verbatim, absent = {}, []
    for name, lens in lenses.items():
        if name not in original:
            absent.append(name)
            em[name] = lens.to_em(None)
            continue
        em[name] = lens.to_em(original[name])
        if not _same(lens.to_card(em[name]), original[name]):
            verbatim[name] = original[name]
    if verbatim:
        kept["verbatim"] = verbatim
    if absent:
        kept["absent"] = absent
    return em, kept


def join(em: Mapping[str, Any], kept: Mapping[str, Any], lenses: Mapping[str, Lens]) -> dict[str, Any]:
    """The card fields: kept fields, then each lensed field from its em value (see module doc)."""
    out = dict(kept.get("fields") or {})
    verbatim, absent = kept.get("verbatim") or {}, set(kept.get("absent") or ())
    for name, lens in lenses.items():
        current = em.get(name)
        if name in verbatim and _same(lens.to_em(verbatim[name]), current):
            out[name] = verbatim[name]
        elif name in absent and _same(lens.to_em(None), current):
            continue
        else:
            out[name] = lens.to_card(current)
    return out


def _same(a: Any, b: Any) -> bool:
    # 1 == True in Python; a card that says 1 where the spec wants true must keep its 1
    if isinstance(a, (bool, int, float)) or isinstance(b, (bool, int, float)):
        return type(a) is type(b) and a == b
    return a == b
