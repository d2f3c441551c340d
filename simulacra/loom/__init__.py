"""Layer 6: the loom, branching trees of text (``Loom`` store, ``generate`` children with an engine)."""
from simulacra.loom.tree import Loom, Node, NotFound, Tree, default_path, generate

__all__ = ["Loom", "Node", "NotFound", "Tree", "default_path", "generate"]
