"""An em's tools, as its config says: the built-ins and MCP servers, under its allowlist.

    tools:
      allow: [roll_dice, calculator, note, read_file, weather]   # nothing else runs
      confirm: [note]          # asked of the person before each call
      read_root: docs          # read_file reads only below this folder of the em
      mcp_servers:
        weather: {command: python, args: [weather_server.py]}

Tools named in ``confirm`` count as having side effects. Where no person can be asked (a server,
a scene), they are refused rather than run unasked.
"""
from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, AsyncIterator

from simulacra.agents.builtin_tools import builtin_tools
from simulacra.agents.tools import Call, Confirm, ToolBox

if TYPE_CHECKING:
    from simulacra.ems.em import Em


@contextlib.asynccontextmanager
async def em_tools(em: "Em", confirm: Confirm | None = None) -> AsyncIterator[ToolBox]:
    from simulacra.memory.scratchpad import Scratchpad

    config = em.config.tools
    root = em.folder / config.read_root if config.read_root else None
    ask = confirm or _nobody_to_ask
    async with contextlib.AsyncExitStack() as stack:
        box = ToolBox(allow=config.allow, confirm=ask)
        if config.mcp_servers:
            from simulacra.agents.mcp import MCPTools

            remote = await stack.enter_async_context(MCPTools(config.mcp_servers, allow=config.allow, confirm=ask))
            box.add(*remote.tools.values())
        box.add(*builtin_tools(root=root, scratchpad=Scratchpad.for_em(em.folder)))
        for t in box.tools.values():
            if t.name in config.confirm:
                t.side_effects = True
        yield box


def _nobody_to_ask(call: Call) -> bool:
    return False
