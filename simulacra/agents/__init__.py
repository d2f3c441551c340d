"""Layer 5: tools and agent loops.

- tools.py: ``@tool`` (a schema from hints and docstring), ``ToolBox`` (allowlist, checks,
  confirmation, timeouts; failures become observations the model reads)
- builtin_tools.py: dice, calculator, clock, read_file under a root, scratchpad memory
- textproto.py: tool calls as text (``Action: name {json}``) for models without native calls
- react.py / rewoo.py: the ReAct and ReWOO loops over the text protocol
- native.py: the loop for chat engines with native tool calls
- mcp.py: tools from MCP servers (the `mcp` extra, imported only when used)
"""
from simulacra.agents.builtin_tools import builtin_tools, calculate, roll
from simulacra.agents.mcp import MCPTools, ServerConfig
from simulacra.agents.native import run_native
from simulacra.agents.react import run_react
from simulacra.agents.rewoo import Plan, parse_plan, run_rewoo
from simulacra.agents.textproto import ActionParseError, parse_call, render_tools
from simulacra.agents.tools import Call, Observation, Tool, ToolBox, tool
from simulacra.agents.trace import Step, Trace, Usage

__all__ = [
    "builtin_tools", "calculate", "roll", "MCPTools", "ServerConfig", "run_native", "run_react", "Plan",
    "parse_plan", "run_rewoo", "ActionParseError", "parse_call", "render_tools", "Call", "Observation",
    "Tool", "ToolBox", "tool", "Step", "Trace", "Usage",
]
