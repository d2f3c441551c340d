"""A small MCP server for test_mcp.py, built with the `mcp` SDK's own server (FastMCP, named
MCPServer since mcp 2). Run over stdio:  python tests/agents/mcp_server.py MARKER_FILE
or over streamable HTTP on loopback:  python tests/agents/mcp_server.py MARKER_FILE --http PORT"""
import sys
from pathlib import Path

from mcp.types import ToolAnnotations

try:  # mcp >= 2
    from mcp.server.mcpserver import MCPServer as Server
    from mcp.server.mcpserver.exceptions import ToolError
except ImportError:  # mcp 1.x
    from mcp.server.fastmcp import FastMCP as Server
    from mcp.server.fastmcp.exceptions import ToolError

server = Server("test-tools")
MARKER = Path(sys.argv[1])


@server.tool(annotations=ToolAnnotations(readOnlyHint=True))
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool()
def shout(text: str) -> str:
    """Say it loudly."""
    return text.upper() + "!"


@server.tool()
def explode() -> str:
    """Always fails, with a message meant for the client."""
    raise ToolError("kaboom: the fuse was lit")


@server.tool()
def wipe() -> str:
    """Leaves a mark if it ever runs: the allowlist test checks it never does."""
    MARKER.write_text("wiped")
    return "wiped"


if __name__ == "__main__":
    if "--http" in sys.argv:
        port = int(sys.argv[sys.argv.index("--http") + 1])
        if hasattr(server.settings, "port"):  # mcp 1.x: host and port are settings
            server.settings.host, server.settings.port = "127.0.0.1", port
            server.run("streamable-http")
        else:
            server.run("streamable-http", host="127.0.0.1", port=port)
    else:
        server.run("stdio")
