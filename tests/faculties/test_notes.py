"""The notes faculty: static text from config or a file, with a depth for prompt assembly."""
import pytest

from simulacra.errors import ConfigError
from simulacra.faculties import notes, parse_faculty


def config(**keys):
    return parse_faculty({"faculty": "notes", **keys}, "config.yaml", "ensembles[0]")[1]


async def run(em, cfg):
    return [t async for t in notes.FACULTY.run(em, cfg, [])]


async def test_text_and_file(tmp_path, make_em):
    em = make_em(tmp_path, files={"persona.txt": "\ufeff{name} is a harbour-master.\n\n"})
    assert await run(em, config(text="  Keep replies short.\n")) == ["Keep replies short."]
    assert await run(em, config(file="persona.txt")) == ["{name} is a harbour-master."]  # {name}: assembly's job
    assert await run(em, config(text="   ")) == []


def test_depth_is_declared_on_the_config():
    assert config(text="x").depth is None
    assert config(text="x", depth=2).depth == 2
    with pytest.raises(ConfigError, match="depth"):
        config(text="x", depth=-1)


@pytest.mark.parametrize("keys", [{}, {"text": "a", "file": "b.txt"}])
def test_exactly_one_source(keys):
    with pytest.raises(ConfigError, match="either 'text:' or 'file:'"):
        config(**keys)


async def test_missing_file(tmp_path, make_em):
    with pytest.raises(ConfigError, match="scenario.txt does not exist"):
        await run(make_em(tmp_path), config(file="scenario.txt"))
