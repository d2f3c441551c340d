"""Layer 1: white-box language models that expose tokens and next-token logits.

``ngram`` holds the toy models of seed 001 (uniform, unigram, Markov chains over characters or
words); every model here implements ``simulacra.types.LanguageModel``.
"""
from simulacra.lm.ngram import NGramModel, load, train

__all__ = ["NGramModel", "load", "train"]
