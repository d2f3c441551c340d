"""Layer 6: worlds. Many ems and people sharing a place over time.

``Scene`` is one shared transcript with presence; ``run_scene`` hands the floor around by a
next-speaker policy from ``simulacra.world.turns``.
"""
from simulacra.world.scene import Engines, Hooks, Participant, Scene, read_log, run_scene, take_turn
from simulacra.world.turns import (POLICIES, AskModel, Mention, Policy, RoundRobin, Weighted, make_policy,
                                   predict_speaker)

__all__ = ["Engines", "Hooks", "Participant", "Scene", "read_log", "run_scene", "take_turn",
           "POLICIES", "AskModel", "Mention", "Policy", "RoundRobin", "Weighted", "make_policy",
           "predict_speaker"]
