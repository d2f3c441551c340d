"""Layer 5: long-term memory (Generative Agents' memory stream) and the em's scratchpad."""
from simulacra.memory.scoring import DEFAULT_DECAY, Weights, heuristic_importance
from simulacra.memory.scratchpad import Scratchpad
from simulacra.memory.store import KINDS, Memory, MemoryStore, Scored, memory_path

__all__ = ["DEFAULT_DECAY", "KINDS", "Memory", "MemoryStore", "Scored", "Scratchpad", "Weights",
           "heuristic_importance", "memory_path"]
