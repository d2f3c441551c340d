"""Tokenizers for the toy models: text <-> token ids over a vocabulary learned from a corpus.

Two levels (seed 001 talks about characters; real models use bigger chunks):

- ``char``: one token per character.
- ``word``: words, runs of spaces, single newlines and single punctuation marks, so the pieces
  join back into the text exactly. Every character seen in training is also in the vocabulary,
  so a word never seen spells itself out character by character and still round-trips.

Id 0 is ``<unk>``: a character never seen in training. It decodes to U+FFFD, the replacement
character, which itself encodes back to ``<unk>``.
"""
from __future__ import annotations

import re
from typing import Iterable, Sequence

from simulacra.errors import InputError

UNK = "\ufffd"
LEVELS = ("char", "word")

# Every character matches exactly one branch, so the pieces always cover the whole text.
_PIECES = re.compile(r"\w+|[^\S\n]+|\n|[^\w\s]")


def split_words(text: str) -> list[str]:
    """Split text into word-level pieces; ``"".join(split_words(t)) == t`` for every t."""
    return _PIECES.findall(text)


def pieces(text: str, level: str) -> list[str]:
    return list(text) if level == "char" else split_words(text)


class Tokenizer:
    """A fixed vocabulary (id 0 is <unk>) and the rule for cutting text into it."""

    def __init__(self, vocab: Sequence[str], level: str):
        if level not in LEVELS:
            raise InputError(f"unknown level '{level}': use --level char or --level word")
        if not vocab or vocab[0] != UNK:
            raise InputError("a vocabulary must start with the <unk> token U+FFFD")
        self.level = level
        self.vocab = list(vocab)
        self.index = {piece: i for i, piece in enumerate(self.vocab)}

    @classmethod
    def learn(cls, text: str, level: str) -> Tokenizer:
        """The vocabulary of a corpus, in order of first appearance (stable across runs)."""
        if level not in LEVELS:
            raise InputError(f"unknown level '{level}': use --level char or --level word")
        seen = dict.fromkeys(pieces(text, level))
        if level == "word":
            seen.update(dict.fromkeys(text))  # the character fallback for unseen words
        seen.pop(UNK, None)
        return cls([UNK, *seen], level)

    def __len__(self) -> int:
        return len(self.vocab)

    def encode(self, text: str) -> list[int]:
        index = self.index
        if self.level == "char":
            return [index.get(c, 0) for c in text]
        ids: list[int] = []
        for piece in split_words(text):
            i = index.get(piece)
            if i is None:
                ids.extend(index.get(c, 0) for c in piece)
            else:
                ids.append(i)
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        vocab, n = self.vocab, len(self.vocab)
        try:
            return "".join(vocab[i] if 0 <= i < n else UNK for i in ids)
        except TypeError:
            raise InputError("token ids must be integers") from None
