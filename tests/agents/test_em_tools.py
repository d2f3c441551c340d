"""An em's tools come from its config: allowlist, confirmation, read root, MCP servers."""
import sys
from pathlib import Path

import pytest

from simulacra.agents.em_tools import em_tools

SERVER = str(Path(__file__).with_name("mcp_server.py"))


async def test_only_allowed_tools_are_offered_and_others_are_refused(make_em, tmp_path):
    em = make_em(tmp_path, {"tools": {"allow": ["roll_dice", "calculator"]}})
    async with em_tools(em) as box:
        assert sorted(t.name for t in box.available) == ["calculator", "roll_dice"]
        assert (await box.call("calculator", {"expression": "6*7"})).text == "42"
        refused = await box.call("clock", {})
        assert not refused.ok and "not allowed" in refused.text


async def test_confirm_listed_tools_ask_the_person_and_are_refused_without_one(make_em, tmp_path):
    em = make_em(tmp_path, {"tools": {"allow": ["note"], "confirm": ["note"]}})
    asked = []

    async with em_tools(em, confirm=lambda call: asked.append(call.name) or False) as box:
        said_no = await box.call("note", {"text": "the cellar key is under the mat"})
    async with em_tools(em) as box:  # no person to ask: refused, not run unasked
        unasked = await box.call("note", {"text": "the cellar key is under the mat"})
    async with em_tools(em, confirm=lambda call: True) as box:
        said_yes = await box.call("note", {"text": "the cellar key is under the mat"})
    assert asked == ["note"]
    assert not said_no.ok and not unasked.ok and said_yes.ok
    assert (em.folder / "state" / "scratchpad.yaml").read_text().count("cellar key") == 1


async def test_read_file_is_confined_to_the_configured_root(make_em, tmp_path):
    em = make_em(tmp_path, {"tools": {"allow": ["read_file"], "read_root": "docs"}},
                 files={"docs/menu.txt": "fish stew", "config.secret": "hunter2"})
    async with em_tools(em) as box:
        assert (await box.call("read_file", {"path": "menu.txt"})).text == "fish stew"
        escape = await box.call("read_file", {"path": "../config.secret"})
        assert not escape.ok and "hunter2" not in escape.text


@pytest.mark.slow
async def test_mcp_servers_in_the_config_become_tools_under_the_same_allowlist(make_em, tmp_path):
    pytest.importorskip("mcp")
    em = make_em(tmp_path, {"tools": {"allow": ["add", "calculator"], "mcp_servers": {
        "local": {"command": sys.executable, "args": [SERVER, str(tmp_path / "wiped")]}}}})
    async with em_tools(em) as box:
        assert sorted(t.name for t in box.available) == ["add", "calculator"]
        assert (await box.call("add", {"a": 2, "b": 3})).text == "5"
        assert not (await box.call("wipe", {})).ok
    assert not (tmp_path / "wiped").exists()
