"""The corpus loader: headers, sections, chunking per format, chat logs, and errors that point."""
from pathlib import Path

import pytest

from simulacra.ems.corpus import (CorpusChunk, chunk_file, content_hash, load_corpus, load_log,
                                  message_texts, read_corpus_file)
from simulacra.errors import ConfigError
from simulacra.types import Message


def write(folder: Path, name: str, text: str | bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


IRC_LOG = """%%%
format: irc
title: At the tavern
mood: [warm, loud]
%%%
<mara> Welcome in, traveller.
<tom> An ale, please.
* mara pours
<tom> Thanks.
and a second line from tom
<mara> Anything else?
<tom> No.
---

<mara> Closing time.
"""


def test_header_is_metadata_and_not_text(tmp_path):
    file = read_corpus_file(write(tmp_path, "a.txt", IRC_LOG))
    assert file.meta == {"format": "irc", "title": "At the tavern", "mood": ["warm", "loud"]}
    assert file.format == "irc"
    assert all("%%%" not in line and "title" not in line for s in file.sections for line in s.lines)
    assert [s.line for s in file.sections] == [6, 15]  # blank line after --- skipped


def test_irc_chunks_by_messages_within_sections_with_line_numbers(tmp_path):
    chunks = chunk_file(read_corpus_file(write(tmp_path, "a.txt", IRC_LOG)), chunk_size=3)
    assert [c.line for c in chunks] == [6, 9, 15]
    assert chunks[0].text == "<mara> Welcome in, traveller.\n<tom> An ale, please.\n* mara pours"
    assert chunks[0].messages[2] == Message("mara", "pours", kind="action")
    # an unprefixed line continues the message above it
    assert chunks[1].messages[0] == Message("tom", "Thanks.\nand a second line from tom")
    assert len(chunks[1].messages) == 3
    assert chunks[2].text == "<mara> Closing time."  # a section boundary always starts a chunk
    assert all(c.source == tmp_path / "a.txt" for c in chunks)


def test_chunk_size_and_chunk_by_section(tmp_path):
    file = read_corpus_file(write(tmp_path, "a.txt", IRC_LOG))
    assert [len(c.messages) for c in chunk_file(file, chunk_size=1)] == [1] * 7
    by_section = chunk_file(file, chunk_by="section")
    assert [len(c.messages) for c in by_section] == [6, 1]
    assert by_section[0].text.count("\n") == 6  # 6 messages on 7 lines, verbatim


def test_colon_log_detected_and_rerendered(tmp_path):
    write(tmp_path, "c.txt", "Mara: Welcome.\nOld Tom: An ale.\n")
    file = read_corpus_file(tmp_path / "c.txt")
    assert file.format == "colon"
    [chunk] = load_corpus(tmp_path)
    assert chunk.messages == (Message("Mara", "Welcome."), Message("Old Tom", "An ale."))
    [irc] = load_corpus(tmp_path, render_format="irc")
    assert irc.text == "<Mara> Welcome.\n<Old Tom> An ale."


def test_prose_chunks_by_paragraph(tmp_path):
    text = "The harbour was quiet.\nGulls slept.\n\n\nMara counted coins.\n---\nA new day.\n"
    write(tmp_path, "p.txt", text)
    chunks = load_corpus(tmp_path, chunk_size=1)
    assert [(c.text, c.line) for c in chunks] == [
        ("The harbour was quiet.\nGulls slept.", 1), ("Mara counted coins.", 5), ("A new day.", 7)]
    assert all(c.messages == () for c in chunks)
    assert [c.text for c in load_corpus(tmp_path, chunk_by="section")] == [
        "The harbour was quiet.\nGulls slept.\n\n\nMara counted coins.", "A new day."]


def test_mixed_lines_are_prose_unless_declared(tmp_path):
    write(tmp_path, "m.txt", "<mara> hi\nThe wind rose.\n")
    assert read_corpus_file(tmp_path / "m.txt").format == "prose"
    write(tmp_path, "n.txt", "%%%\nformat: prose\n%%%\n<mara> hi\n<tom> hey\n")
    assert read_corpus_file(tmp_path / "n.txt").format == "prose"


def test_files_load_sorted_and_hashes_follow_content(tmp_path):
    write(tmp_path, "b.txt", "<b> two\n")
    write(tmp_path, "a.txt", "<a> one\n")
    write(tmp_path, "notes.md", "<c> not a corpus file\n")
    chunks = load_corpus(tmp_path)
    assert [c.text for c in chunks] == ["<a> one", "<b> two"]
    assert chunks[0].hash == content_hash("<a> one") != chunks[1].hash
    assert CorpusChunk("x", Path("f"), 1) == CorpusChunk("x", Path("f"), 1)
    assert load_corpus(tmp_path / "missing") == []


@pytest.mark.parametrize("text, line, words", [
    ("%%%\nformat: irc\n<a> hi\n", 1, "never closed"),
    ("%%%\nformat: [irc\n%%%\n<a> hi\n", 2, "bad header"),
    ("%%%\ntitle: ok\n  bad: indent\n%%%\n", 3, "bad header"),
    ("%%%\n- a list\n%%%\n", 2, "key: value"),
    ("%%%\ntitle: x\nformat: markdown\n%%%\n", 3, "unknown format 'markdown'"),
    ("%%%\nformat: irc\n%%%\n<a> fine\n---\nno speaker here\n", 6, "expected a irc message"),
    ("%%%\nformat: colon\n%%%\nMara: ok\n---\n\n<mara> irc here\n", 7, "expected a colon message"),
])
def test_malformed_files_name_file_and_line(tmp_path, text, line, words):
    write(tmp_path, "bad.txt", text)
    with pytest.raises(ConfigError) as e:
        load_corpus(tmp_path)
    assert f"bad.txt:{line}:" in str(e.value) and words in str(e.value)
    assert "\n" not in str(e.value)


def test_non_utf8_names_the_line(tmp_path):
    write(tmp_path, "latin.txt", "<a> ok\n<b> caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"latin\.txt:2: not UTF-8"):
        load_corpus(tmp_path)


def test_load_log_uses_chat_grammar(tmp_path):
    path = write(tmp_path, "history.txt", "<a> one\n---\n<b> two\n<c> quoted\n---\n-!- rain starts\n<a> end\n")
    assert load_log(path) == [Message("a", "one"), Message("b", "two\n<c> quoted"),
                              Message(None, "rain starts", kind="observation"), Message("a", "end")]
    colon = write(tmp_path, "h2.txt", "Mara: hi\nTom: hey\n")
    assert load_log(colon, "colon") == [Message("Mara", "hi"), Message("Tom", "hey")]
    headed = write(tmp_path, "h3.txt", "%%%\nformat: colon\n%%%\nMara: hi\n")
    assert load_log(headed) == [Message("Mara", "hi")]


def test_load_log_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"h\.txt:2: expected a irc message"):
        load_log(write(tmp_path, "h.txt", "\njust prose\n<a> hi\n"))
    with pytest.raises(ConfigError, match="format 'prose'"):
        load_log(write(tmp_path, "p.txt", "<a> hi\n"), "prose")


def test_message_texts_render_and_keep_thoughts_readable():
    msgs = [Message("a", "hi"), Message("a", "hmm", kind="thought")]
    assert message_texts("irc", msgs) == ["<a> hi", "hmm"]
    assert message_texts("colon", msgs)[0] == "a: hi"
    assert message_texts("chat", msgs)[0] == "<a> hi"  # no template here: fall back to irc
