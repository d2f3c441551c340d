"""`simulacra new`: a working em folder whose config.yaml documents every key, from the schema."""
import re

import pytest
import yaml
from pydantic import BaseModel

from simulacra.ems import scaffold
from simulacra.ems.config import EmConfig, SECRET_KEYS
from simulacra.ems.em import Em
from simulacra.errors import ConfigError, InputError
from simulacra.faculties import registry
from simulacra.types import Message


def all_keys(model, prefix=""):
    for key, field in model.model_fields.items():
        yield model, key, prefix + key
        sub = field.annotation
        if isinstance(sub, type) and issubclass(sub, BaseModel):
            yield from all_keys(sub, prefix + key + ".")


def test_new_em_has_the_layout_and_loads(tmp_path):
    folder = scaffold.new_em("wren", tmp_path)
    assert folder == tmp_path / "wren"
    for rel in ["config.yaml", "notes/persona.txt", "wren.chr/wren.txt", "history.txt", ".gitignore"]:
        assert (folder / rel).is_file(), rel
    assert "state/" in (folder / ".gitignore").read_text().split()
    em = Em.load(folder)
    assert em.name == "wren"
    assert [f.name for f, _ in em.faculties] == ["notes", "character", "history"]
    corpus = (folder / "wren.chr/wren.txt").read_text()
    assert corpus.startswith("%%%\n") and "\n---\n" in corpus


async def test_new_em_faculties_yield_items(tmp_path):
    em = Em.load(scaffold.new_em("wren", tmp_path))
    em.config.representation_model = "hash"  # no embedding model needed
    history = [Message("user", "what do you like?")]
    for faculty, config in em.faculties:
        items = [i async for i in faculty.run(em, config, history)]
        assert items, faculty.name
        if faculty.name == "character":
            assert any("<wren>" in i for i in items)


def test_every_key_has_a_comment_above_it(tmp_path):
    lines = scaffold.render_config({"name": "x", "tools": {"allow": ["clock"]}}).splitlines()
    for model, key, path in all_keys(EmConfig):
        indent = "  " * path.count(".")
        key_line = re.compile(rf"(# )?{indent}(# )?{key}:( .*)?")
        hits = [i for i, line in enumerate(lines) if key_line.fullmatch(line)]
        assert hits, f"{path} missing from config.yaml"
        above, i = [], hits[0] - 1
        while i >= 0 and re.fullmatch(rf"(# )?{indent}# .*", lines[i]) and not key_line.fullmatch(lines[i]):
            above.insert(0, lines[i].split("# ")[-1])
            i -= 1
        assert len(" ".join(above)) > 10, f"{path} has no explanation above it"


def test_every_key_is_described():
    """Drift guard: a new config key needs a description (Field(description=...) in the schema)."""
    for model, key, path in all_keys(EmConfig):
        assert len(scaffold.describe(model, key, path.rsplit(key, 1)[0])) > 10, \
            f"add description=... to the config key {path}"
    for name, faculty in registry().items():
        for key in faculty.config.model_fields:
            if key != "faculty":
                assert len(scaffold.describe(faculty.config, key)) > 10, f"faculty {name}: describe '{key}'"


def test_uncommented_defaults_are_the_schema_defaults():
    """Uncomment every top-level key: the file must load to exactly the schema's defaults."""
    text = scaffold.render_config({"name": "x"})
    keys = "|".join(EmConfig.model_fields)
    uncommented = re.sub(rf"(?m)^# ((?:(?:{keys}):.*)|(?:  .*))$", r"\1", text)
    data = yaml.safe_load(uncommented)
    assert set(EmConfig.model_fields) <= set(data)
    config = EmConfig.model_validate({k: v for k, v in data.items() if k not in SECRET_KEYS or v})
    assert config == EmConfig(name="x")


def test_given_settings_round_trip():
    settings = {"name": "Odd Name", "temperature": 0.5, "stop_sequences": ["\n\n", "'quoted' \"both\""],
                "message_history_header": "  spaced: header\n", "logit_bias": {42: -100.0},
                "memory": {"enabled": True}}
    ensembles = [{"faculty": "notes", "text": "Line one.\nLine: two", "depth": 0, "header": "# not a comment"},
                 {"faculty": "history", "file": "seed.txt"}]
    data = yaml.safe_load(scaffold.render_config(settings, ensembles))
    assert {k: data[k] for k in settings} == settings
    assert data["ensembles"] == ensembles
    assert EmConfig.model_validate(data).memory.enabled is True


def test_refuses_to_overwrite(tmp_path):
    (tmp_path / "wren").mkdir()
    (tmp_path / "wren" / "keep.txt").write_text("mine")
    with pytest.raises(ConfigError, match="already exists"):
        scaffold.new_em("wren", tmp_path)
    assert [p.name for p in (tmp_path / "wren").iterdir()] == ["keep.txt"]


@pytest.mark.parametrize("name", ["", "two words", "-dash", "a/b/../c", "é" * 3, "x" * 65])
def test_bad_names(tmp_path, name):
    with pytest.raises((InputError, ConfigError)):
        scaffold.new_em(name, tmp_path)


def test_path_names_nest(tmp_path):
    folder = scaffold.new_em("ems/wren", tmp_path)
    assert folder == tmp_path / "ems" / "wren" and Em.load(folder).name == "wren"


def test_write_em_is_all_or_nothing(tmp_path):
    with pytest.raises(TypeError):
        scaffold.write_em(tmp_path / "half", {"name": "half"}, [], {"a.txt": "fine", "b.txt": 12345})
    assert list(tmp_path.iterdir()) == []


def test_unknown_keys_are_refused():
    with pytest.raises(ConfigError, match="unknown em config key"):
        scaffold.render_config({"temprature": 1})
    with pytest.raises(ConfigError, match="no key"):
        scaffold.render_config({}, [{"faculty": "notes", "fil": "x"}])
