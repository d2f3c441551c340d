"""The em's scratchpad: what it keeps in mind about its world and the people in it.

Two lists in one YAML file a person can read and edit (``<em>/state/scratchpad.yaml``):

    facts:            # remember(key, text) / forget(key): one line per person, place, thing
      Mara: runs the tavern; owes me two coins
    notes:            # note(text): loose observations, in the order written
    - the well went dry on Tuesday

The file is read before every change, so edits made by hand while the em runs are kept, and
written atomically (temporary file, fsync, rename), so a crash mid-write leaves the old version
or the new one, never a torn file. Comments other than the header are not preserved.
"""
from __future__ import annotations

import threading
from pathlib import Path

import yaml

from simulacra.errors import InputError
from simulacra.storage import atomic_write

HEADER = "# The em's scratchpad. Edit freely: 'facts' maps a name to a line, 'notes' is a list.\n"


class Scratchpad:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock = threading.Lock()

    @classmethod
    def for_em(cls, em_folder: str | Path) -> "Scratchpad":
        return cls(Path(em_folder) / "state" / "scratchpad.yaml")

    @property
    def facts(self) -> dict[str, str]:
        return self._read()[0]

    @property
    def notes(self) -> list[str]:
        return self._read()[1]

    def remember(self, key: str, text: str) -> None:
        """Set the line kept about ``key`` (a person, place or thing), replacing any older one."""
        key, text = _clean(key, "key"), _clean(text, "text")
        with self._lock:
            facts, notes = self._read()
            facts[key] = text
            self._write(facts, notes)

    def note(self, text: str) -> None:
        text = _clean(text, "text")
        with self._lock:
            facts, notes = self._read()
            notes.append(text)
            self._write(facts, notes)

    def forget(self, key: str) -> bool:
        """Drop the fact named ``key`` (or a note with exactly that text); False if neither exists."""
        with self._lock:
            facts, notes = self._read()
            if key in facts:
                del facts[key]
            elif key in notes:
                notes.remove(key)
            else:
                return False
            self._write(facts, notes)
            return True

    def render(self) -> str:
        """The scratchpad as prompt text: one ``key: text`` line per fact, then ``- note`` lines."""
        facts, notes = self._read()
        return "\n".join([f"{k}: {v}" for k, v in facts.items()] + [f"- {n}" for n in notes])

    def _read(self) -> tuple[dict[str, str], list[str]]:
        try:
            raw = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}, []
        except UnicodeDecodeError:
            raise InputError(f"{self.path} is not UTF-8 text; re-save it as UTF-8") from None
        try:
            data = yaml.safe_load(raw) or {}
        except yaml.YAMLError as e:
            where = getattr(e, "problem_mark", None)
            line = f" at line {where.line + 1}" if where else ""
            raise InputError(f"{self.path} is not valid YAML{line}; fix it or delete the file") from None
        facts, notes = (data.get("facts") or {}, data.get("notes") or []) if isinstance(data, dict) else (None, None)
        if not isinstance(facts, dict) or not isinstance(notes, list):
            raise InputError(f"{self.path} must hold 'facts:' (name: text lines) and 'notes:' (a list)")
        # YAML turns `yes` or `12` into non-strings; a scratchpad only holds text.
        return {str(k): str(v) for k, v in facts.items()}, [str(n) for n in notes]

    def _write(self, facts: dict[str, str], notes: list[str]) -> None:
        body = yaml.safe_dump({"facts": facts, "notes": notes}, allow_unicode=True, sort_keys=False,
                              width=100)
        atomic_write(self.path, HEADER + body)




def _clean(value: str, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"a scratchpad {what} must be non-empty text")
    return " ".join(value.split())  # one line each, so the file stays one entry per line
