"""Tools from Model Context Protocol servers, through the `mcp` SDK (extra: simulacra[mcp]).

    servers = {"files": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "."]},
               "search": {"url": "http://localhost:8000/mcp"}}
    async with MCPTools(servers, allow=["read_file", "search"]) as box:
        trace = await run_react(engine, box, "...")

Each server runs over stdio (``command``, ``args``, ``env``, ``cwd``) or streamable HTTP
(``url``); the config may also be the ``{"mcpServers": {...}}`` shape other MCP clients use.
Every tool the servers list becomes a ``Tool`` in one ``ToolBox``, so the allowlist, argument
checking against the server's own schema, confirmation and timeouts work as for local tools.
Tools the server does not mark read-only count as having side effects (the MCP default), so a
``confirm`` callback is asked before they run. Leaving the ``async with`` closes every session
and stops the stdio servers.

Enter and leave it in the same task: the SDK's transports hold anyio cancel scopes.
Works with the SDK's 1.x and 2.x lines: only the API they share is used.
"""
from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from simulacra.agents.tools import Confirm, Tool, ToolBox
from simulacra.errors import ConfigError, ToolError, require

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServerConfig:
    name: str
    command: str | None = None
    args: tuple[str, ...] = ()
    env: Mapping[str, str] | None = None
    cwd: str | None = None
    url: str | None = None
    timeout: float = 30.0  # seconds, for starting up and for each call
    _keys = ("command", "args", "env", "cwd", "url", "timeout")

    @classmethod
    def parse(cls, name: str, data: Mapping[str, Any]) -> ServerConfig:
        unknown = set(data) - set(cls._keys) - {"type", "transport"}
        if unknown:
            raise ConfigError(f"MCP server '{name}': unknown key '{sorted(unknown)[0]}'; use {', '.join(cls._keys)}")
        if bool(data.get("command")) == bool(data.get("url")):
            raise ConfigError(f"MCP server '{name}' needs either a command (stdio) or a url (streamable HTTP)")
        args = data.get("args") or ()
        if isinstance(args, str) or not all(isinstance(a, str) for a in args):
            raise ConfigError(f"MCP server '{name}': args must be a list of strings")
        return cls(name, data.get("command"), tuple(args), data.get("env"), data.get("cwd"), data.get("url"),
                   float(data.get("timeout", 30.0)))


def server_configs(config: Mapping[str, Any] | Iterable[ServerConfig]) -> list[ServerConfig]:
    if not isinstance(config, Mapping):
        return list(config)
    servers = config.get("mcpServers", config)
    return [ServerConfig.parse(name, data) for name, data in servers.items()]


@dataclass
class MCPTools:
    servers: Mapping[str, Any] | Iterable[ServerConfig]
    allow: Iterable[str] | None = None
    confirm: Confirm | None = None
    box: ToolBox | None = field(default=None, init=False)

    async def __aenter__(self) -> ToolBox:
        self._stack = contextlib.AsyncExitStack()
        self.box = ToolBox(allow=self.allow, confirm=self.confirm)
        try:
            for server in server_configs(self.servers):
                for t in await self._connect(server):
                    if t.name in self.box.tools:  # two servers offer the same name: keep both
                        log.warning("MCP tool %s from %s renamed %s_%s", t.name, server.name, server.name, t.name)
                        t.name = f"{server.name}_{t.name}"
                    self.box.add(t)
        except BaseException:
            await self.aclose()
            raise
        return self.box

    async def __aexit__(self, *exc) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        stack, self._stack = getattr(self, "_stack", None), None
        if stack is not None:
            await stack.aclose()

    async def _connect(self, server: ServerConfig) -> list[Tool]:
        require("mcp", "mcp")
        from mcp import ClientSession

        try:
            streams = await self._stack.enter_async_context(_transport(server))
            session = await self._stack.enter_async_context(ClientSession(streams[0], streams[1]))
            await asyncio.wait_for(session.initialize(), server.timeout)
            listed = await asyncio.wait_for(_list_tools(session), server.timeout)
        except (asyncio.TimeoutError, TimeoutError):
            raise ConfigError(f"MCP server '{server.name}' did not answer within {server.timeout:g}s; "
                              "check that its command starts an MCP server on stdio") from None
        except (OSError, ValueError) as e:
            raise ConfigError(f"MCP server '{server.name}' could not start: {e}") from None
        except Exception as e:  # the SDK's own errors, e.g. the process exited during the handshake
            raise ConfigError(f"MCP server '{server.name}' failed during start-up ({type(e).__name__}: {e}); "
                              "check that its command runs an MCP server") from None
        return [_wrap(session, server, data) for data in listed]


def _transport(server: ServerConfig):
    if server.command:
        from mcp.client.stdio import StdioServerParameters, stdio_client

        return stdio_client(StdioServerParameters(command=server.command, args=list(server.args),
                                                  env=dict(server.env) if server.env else None, cwd=server.cwd))
    import mcp.client.streamable_http as http

    # 2.x and late 1.x: streamable_http_client; early 1.x: streamablehttp_client (a 3-tuple)
    connect = getattr(http, "streamable_http_client", None) or http.streamablehttp_client
    return connect(server.url)


async def _list_tools(session) -> list[dict]:
    tools, cursor = [], None
    while True:
        if cursor is None:
            result = await session.list_tools()
        elif "params" in inspect.signature(session.list_tools).parameters:
            from mcp.types import PaginatedRequestParams

            result = await session.list_tools(params=PaginatedRequestParams(cursor=cursor))
        else:
            result = await session.list_tools(cursor=cursor)
        data = result.model_dump(by_alias=True, mode="json", exclude_none=True)
        tools += data.get("tools", [])
        cursor = data.get("nextCursor")
        if not cursor:
            return tools


def _wrap(session, server: ServerConfig, data: dict) -> Tool:
    name = data["name"]
    hints = data.get("annotations") or {}

    async def call(**arguments: Any) -> str:
        result = await session.call_tool(name, arguments)
        out = result.model_dump(by_alias=True, mode="json", exclude_none=True)
        text = "\n".join(c.get("text") or f"[{c.get('type', 'content')}]" for c in out.get("content") or ())
        if not text and out.get("structuredContent") is not None:
            text = json.dumps(out["structuredContent"], ensure_ascii=False)
        if out.get("isError"):
            raise ToolError(text or f"{name} failed on MCP server '{server.name}'")
        return text

    schema = data.get("inputSchema") or {"type": "object", "properties": {}}
    return Tool(name, data.get("description") or data.get("title") or "", schema, call,
                side_effects=not hints.get("readOnlyHint", False), timeout=server.timeout)
