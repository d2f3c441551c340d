"""The history faculty: a seed conversation, newest first so prepend keeps it chronological."""
import pytest

from simulacra.ems.config import SectionConfig
from simulacra.errors import ConfigError
from simulacra.faculties import history, parse_faculty

LOG = "<mara> Welcome.\n<tom> An ale.\n---\n<mara> Here.\nMind the foam.\n---\n<tom> Thanks.\n"


def config(**keys):
    return parse_faculty({"faculty": "history", **keys}, "test", "ensembles[0]")[1]


async def run(em, cfg):
    return [t async for t in history.FACULTY.run(em, cfg, [])]


async def test_newest_first_and_prepend_restores_the_order(tmp_path, make_em):
    em = make_em(tmp_path, files={"history.txt": LOG})
    items = await run(em, config())
    assert items == ["<tom> Thanks.", "---\n<mara> Here.\nMind the foam.\n---", "<tom> An ale.", "<mara> Welcome."]
    # what prompt assembly does with operator=prepend: reverse the items it took
    laid_out = SectionConfig().separator.join(reversed(items)) + "\n"
    assert laid_out == LOG


async def test_file_format_follows_the_em_unless_configured(tmp_path, make_em):
    em = make_em(tmp_path, {"message_history_format": "colon"},
                 {"history.txt": "Mara: Hi.\nTom: Hey.\n", "irc.txt": LOG})
    assert await run(em, config()) == ["Tom: Hey.", "Mara: Hi."]
    # an irc file shown in the em's colon format
    assert (await run(em, config(file="irc.txt", format="irc")))[-1] == "mara: Welcome."


async def test_missing_default_file_is_empty_but_a_named_one_is_an_error(tmp_path, make_em):
    em = make_em(tmp_path)
    assert await run(em, config()) == []
    with pytest.raises(ConfigError, match="seed.txt does not exist"):
        await run(em, config(file="seed.txt"))


async def test_malformed_history_names_the_line(tmp_path, make_em):
    em = make_em(tmp_path, files={"history.txt": "a line of prose\n<tom> hi\n"})
    with pytest.raises(ConfigError, match=r"history\.txt:1: expected a irc message"):
        await run(em, config())
