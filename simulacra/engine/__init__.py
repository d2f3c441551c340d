"""Layer 2: completion engines. ``load_engine(spec)`` is the front door."""
from simulacra.engine.base import Engine, complete_text, run
from simulacra.engine.spec import DEFAULT_MODEL, load_engine, parse_spec

__all__ = ["Engine", "complete_text", "run", "DEFAULT_MODEL", "load_engine", "parse_spec"]
