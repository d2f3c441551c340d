"""The MCP client against a real server made with the `mcp` SDK, started over stdio."""
import asyncio
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from simulacra.agents.mcp import MCPTools, ServerConfig, server_configs
from simulacra.errors import ConfigError

SERVER = str(Path(__file__).with_name("mcp_server.py"))


def test_config_shapes_and_errors():
    (a,) = server_configs({"mcpServers": {"t": {"command": "python", "args": ["s.py"], "env": {"X": "1"}}}})
    assert a == ServerConfig("t", "python", ("s.py",), {"X": "1"})
    (b,) = server_configs({"web": {"url": "http://localhost:9/mcp", "type": "http"}})
    assert b.url == "http://localhost:9/mcp" and b.command is None
    with pytest.raises(ConfigError, match="either a command"):
        server_configs({"x": {}})
    with pytest.raises(ConfigError, match="unknown key 'comand'"):
        server_configs({"x": {"comand": "python"}})
    with pytest.raises(ConfigError, match="args must be a list"):
        server_configs({"x": {"command": "python", "args": "s.py"}})


@pytest.mark.slow
async def test_stdio_server_list_call_refuse_and_close(tmp_path):
    pytest.importorskip("mcp")
    marker = tmp_path / "wiped"
    servers = {"local": {"command": sys.executable, "args": [SERVER, str(marker)]}}
    async with MCPTools(servers, allow=["add", "shout", "explode"]) as box:
        assert set(box.tools) == {"add", "shout", "explode", "wipe"}
        assert [t.name for t in box.available] == ["add", "shout", "explode"]
        add = box.tools["add"]
        assert add.description == "Add two integers."
        assert add.parameters["required"] == ["a", "b"] and add.parameters["properties"]["a"]["type"] == "integer"
        assert add.side_effects is False and box.tools["shout"].side_effects is True  # not marked read-only

        obs = await box.call("add", '{"a": 2, "b": "40"}')
        assert obs.ok and obs.text.startswith("42")
        assert (await box.call("shout", {"text": "hi"})).text == "HI!"

        failed = await box.call("explode", {})
        assert not failed.ok and "kaboom" in failed.text
        wrong = await box.call("add", {"a": "two", "b": 1})  # checked against the server's schema first
        assert not wrong.ok and "argument 'a' must be an integer" in wrong.text

        refused = await box.call("wipe", {})
        assert not refused.ok and "not allowed" in refused.text
    assert not marker.exists()  # the refused tool never reached the server


@pytest.mark.slow
async def test_confirmation_applies_to_mcp_tools_with_side_effects(tmp_path):
    pytest.importorskip("mcp")
    asked = []

    async def confirm(call):
        asked.append(call.name)
        return False

    servers = [ServerConfig("local", sys.executable, (SERVER, str(tmp_path / "m")))]
    async with MCPTools(servers, confirm=confirm) as box:
        assert (await box.call("add", {"a": 1, "b": 1})).ok  # read-only: not asked
        declined = await box.call("wipe", {})
    assert asked == ["wipe"] and "declined" in declined.text and not (tmp_path / "m").exists()


@pytest.mark.slow
async def test_a_server_that_cannot_start_is_a_config_error():
    pytest.importorskip("mcp")
    with pytest.raises(ConfigError, match="'ghost' could not start"):
        async with MCPTools({"ghost": {"command": "/nonexistent/mcp-server"}}):
            pass


@pytest.mark.slow
async def test_streamable_http_server(tmp_path):
    pytest.importorskip("mcp")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, SERVER, str(tmp_path / "m"), "--http", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:  # wait for the server to listen
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "the HTTP MCP server did not start"
                await asyncio.sleep(0.2)
        async with MCPTools({"web": {"url": f"http://127.0.0.1:{port}/mcp"}}, allow=["add"]) as box:
            assert (await box.call("add", {"a": 20, "b": 22})).text.startswith("42")
            assert "not allowed" in (await box.call("wipe", {})).text
    finally:
        proc.terminate()
        proc.wait(10)
    assert not (tmp_path / "m").exists()
