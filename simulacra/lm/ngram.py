"""Toy n-gram language models (seed 001): uniform, unigram and order-N Markov chains.

``order`` counts the predicted token too, as in "bigram": order 0 is uniform over the vocabulary,
order 1 is a unigram model (token frequencies, no context), order N looks at the previous N-1
tokens. Train one on any text with ``train``, save it with ``model.save(path)``, load it with
``load(path)``; it implements ``simulacra.types.LanguageModel`` so the local engine can sample it.

Smoothing is interpolated Kneser-Ney. We chose it over Witten-Bell because its lower orders are
estimated from *continuation* counts (in how many different contexts a token appears), which is
what a lower order is for: predicting a token after a context never seen in training. That makes
each extra order pay off on held-out text instead of overfitting, and it is the best of the
classical methods in Chen & Goodman's comparison. Each level subtracts a discount D (estimated
from the counts as n1 / (n1 + 2 n2)) from every seen count and hands the freed mass down to the
next lower order; the lowest level hands its share to a uniform distribution over the whole
vocabulary, which is how ``<unk>`` and never-seen tokens keep a probability above zero.
"""
from __future__ import annotations

import base64
import gzip
import json
import math
import os
import zlib
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from simulacra.errors import InputError, ModelError, ModelNotFound
from simulacra.lm.tokenize import Tokenizer
from simulacra.storage import read_text_file as read_corpus  # noqa: F401  (a corpus is a text file)

FORMAT, VERSION = "simulacra-ngram", 1
MAX_ORDER = 16
_MEMO_BYTES = 64 << 20  # bound on cached next-token distributions


def train(text: str, order: int, level: str = "char") -> NGramModel:
    """Learn a vocabulary and n-gram counts from ``text``."""
    if isinstance(order, bool) or not isinstance(order, int) or not 0 <= order <= MAX_ORDER:
        raise InputError(f"order must be a whole number from 0 to {MAX_ORDER}, not {order!r}")
    if not text:
        raise InputError("the corpus is empty: give some text to learn from")
    tokenizer = Tokenizer.learn(text, level)
    ids = np.asarray(tokenizer.encode(text), dtype=np.int64)
    levels = [_Level(k, _discount(cnt), ctx, starts, nxt, cnt)
              for k, (ctx, starts, nxt, cnt) in enumerate(_count(ids, order, len(tokenizer)))]
    return NGramModel(tokenizer, order, levels)


def load(path: str | os.PathLike) -> NGramModel:
    """Read a model saved by ``NGramModel.save``; ModelError if the file is not one."""
    path = Path(path)
    if not path.is_file():
        raise ModelNotFound(f"no n-gram model at {path}: train one with "
                            f"simulacra ngram train CORPUS -o {path} --order 4")
    fix = f"give a file made by: simulacra ngram train CORPUS -o {path} --order N"
    try:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, EOFError, ValueError, zlib.error):  # ValueError: bad UTF-8 or JSON
        raise ModelError(f"{path} is not a saved n-gram model (not gzip'd JSON); {fix}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ModelError(f"{path} is not a saved n-gram model (no '{FORMAT}' header); {fix}")
    if data.get("version") != VERSION:
        raise ModelError(f"{path} has n-gram format version {data.get('version')!r}, this "
                         f"simulacra reads version {VERSION}; {fix}")
    try:
        return NGramModel._from_json(data)
    except (KeyError, TypeError, ValueError, InputError) as e:
        raise ModelError(f"{path} is a corrupt n-gram model ({e}); {fix}") from None


class NGramModel:
    """A trained n-gram model. Thread-compatible for reading; the memo is only a cache."""

    max_context = 4096  # nominal: any prompt length works, only the last order-1 tokens matter
    eos_ids: frozenset[int] = frozenset()  # plain text has no end-of-document token

    def __init__(self, tokenizer: Tokenizer, order: int, levels: Sequence[_Level]):
        if len(levels) != order:
            raise ValueError(f"an order-{order} model needs {order} levels, got {len(levels)}")
        self.tokenizer, self.order, self.levels = tokenizer, order, list(levels)
        self.vocab_size = len(tokenizer)
        self._uniform = np.full(self.vocab_size, 1.0 / self.vocab_size)
        self._memo_limit = max(256, _MEMO_BYTES // (12 * self.vocab_size))
        self._probs: dict[tuple[int, int], np.ndarray] = {}  # (level, row) -> probabilities
        self._logp: dict[tuple, np.ndarray] = {}  # context ids -> float32 log-probabilities
        self._chains: dict[tuple, list[tuple[int, int]]] = {}

    def __repr__(self) -> str:
        return f"NGramModel(order={self.order}, level={self.level!r}, vocab_size={self.vocab_size})"

    @property
    def level(self) -> str:
        return self.tokenizer.level

    @property
    def n_ngrams(self) -> int:
        """How many counts the model stores: its parameters, in seed 001's sense."""
        return sum(len(lv.nxt) for lv in self.levels) if self.order else self.vocab_size

    # --- the LanguageModel protocol -------------------------------------------------------------

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text)

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(ids)

    def logits(self, ids: Sequence[int], cache: Any = None) -> tuple[np.ndarray, tuple]:
        """Natural-log probabilities (float32, a fresh copy) of the token after ``ids``.

        The cache returned is the context key; an n-gram model needs nothing else, so the
        ``cache`` argument is accepted and ignored. Each distinct context is computed once.
        """
        key = tuple(ids[-(self.order - 1):]) if self.order > 1 else ()
        logp = self._logp.get(key)
        if logp is None:
            chain = self._chain(key)
            probs = self._dense(chain) if chain else self._uniform
            logp = np.log(probs).astype(np.float32)
            self._remember(self._logp, key, logp)
        return logp.copy(), key

    # --- evaluation ---------------------------------------------------------------------------

    def log2prob(self, text: str) -> float:
        """log2 of the probability the model gives ``text`` (tokenized its own way)."""
        ids, total = self.encode(text), 0.0
        m = self.order - 1
        for i, token in enumerate(ids):
            key = tuple(ids[max(0, i - m):i]) if m > 0 else ()
            total += math.log2(self._prob(self._chain(key), token))
        return total

    def bits_per_char(self, text: str) -> float:
        if not text:
            raise InputError("cannot evaluate empty text: give at least one character")
        return -self.log2prob(text) / len(text)

    def perplexity(self, text: str) -> float:
        """Per-token perplexity: 2 ** (average bits per token)."""
        n = len(self.encode(text))
        if not n:
            raise InputError("cannot evaluate empty text: give at least one character")
        return 2.0 ** (-self.log2prob(text) / n)

    # --- probabilities ------------------------------------------------------------------------

    def _chain(self, key: tuple) -> list[tuple[int, int]]:
        """(level, row) for each suffix of the context seen in training, shortest first.

        A suffix unseen in training means every longer one is unseen too, so we stop there.
        """
        chain = self._chains.get(key)
        if chain is None:
            chain = []
            for k, lv in enumerate(self.levels[:len(key) + 1]):
                row = lv.contexts.get(key[len(key) - k:] if k else ())
                if row is None:
                    break
                chain.append((k, row))
            self._remember(self._chains, key, chain)
        return chain

    def _dense(self, chain: list[tuple[int, int]]) -> np.ndarray:
        """The whole next-token distribution, built level by level from the uniform one."""
        probs = self._probs.get(chain[-1])
        if probs is None:
            k, row = chain[-1]
            lower = self._dense(chain[:-1]) if len(chain) > 1 else self._uniform
            lv = self.levels[k]
            s, e = lv.starts[row], lv.starts[row + 1]
            probs = lower * lv.gamma[row]
            probs[lv.nxt[s:e]] += (lv.cnt[s:e] - lv.discount) / lv.total[row]
            self._remember(self._probs, chain[-1], probs)
        return probs

    def _prob(self, chain: list[tuple[int, int]], token: int) -> float:
        """One token's probability: the same sum as ``_dense`` without building the vector."""
        p = 1.0 / self.vocab_size
        for k, row in chain:
            lv = self.levels[k]
            c = lv.followers(row).get(token, 0.0)
            p = lv.gamma[row] * p + (max(c - lv.discount, 0.0) / lv.total[row])
        return p

    def _remember(self, memo: dict, key, value) -> None:
        if len(memo) >= self._memo_limit:
            memo.clear()  # crude but bounded; generation revisits few contexts anyway
        memo[key] = value

    # --- files --------------------------------------------------------------------------------

    def save(self, path: str | os.PathLike) -> None:
        """Write the model as gzip'd JSON, atomically (a reader never sees half a file)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "format": FORMAT, "version": VERSION, "kind": _kind(self.order),
            "order": self.order, "level": self.level, "vocab": self.tokenizer.vocab,
            "levels": [{"k": lv.k, "discount": lv.discount, "contexts": _pack(lv.ctx),
                        "starts": _pack(lv.starts), "next": _pack(lv.nxt), "counts": _pack(lv.cnt)}
                       for lv in self.levels],
        }
        tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
        try:
            with gzip.open(tmp, "wt", encoding="utf-8", compresslevel=6) as f:
                json.dump(data, f, ensure_ascii=False, separators=(",", ":"))
            os.replace(tmp, path)
        except OSError as e:
            tmp.unlink(missing_ok=True)
            raise InputError(f"cannot write {path}: {e.strerror or e}") from None

    @classmethod
    def _from_json(cls, data: dict) -> NGramModel:
        order, vocab = data["order"], data["vocab"]
        if not isinstance(order, int) or not 0 <= order <= MAX_ORDER:
            raise ValueError(f"bad order {order!r}")
        if not isinstance(vocab, list) or not all(isinstance(v, str) for v in vocab):
            raise ValueError("vocab is not a list of strings")
        tokenizer = Tokenizer(vocab, data["level"])
        levels = []
        for k, lv in enumerate(data["levels"]):
            if lv["k"] != k:
                raise ValueError(f"level {k} is out of place")
            ctx, starts = _unpack(lv["contexts"]), _unpack(lv["starts"])
            if len(ctx) != k * (len(starts) - 1):
                raise ValueError(f"level {k} contexts are truncated")
            levels.append(_Level(k, lv["discount"], ctx.reshape(len(starts) - 1, k), starts,
                                 _unpack(lv["next"]), _unpack(lv["counts"]), vocab_size=len(vocab)))
        return cls(tokenizer, order, levels)


class _Level:
    """Counts for contexts of length k, in compressed-row form: row r's followers are
    ``nxt[starts[r]:starts[r+1]]`` with counts ``cnt[...]`` (raw counts at the top level,
    Kneser-Ney continuation counts below it)."""

    def __init__(self, k: int, discount: float, ctx: np.ndarray, starts: np.ndarray,
                 nxt: np.ndarray, cnt: np.ndarray, vocab_size: int | None = None):
        n = len(starts) - 1
        if not 0.0 < float(discount) < 1.0:
            raise ValueError(f"level {k} discount {discount!r} is not between 0 and 1")
        if (n < 0 or ctx.shape != (n, k) or starts[0] != 0 or starts[-1] != len(nxt)
                or len(nxt) != len(cnt) or np.any(np.diff(starts) <= 0) or np.any(cnt < 1)):
            raise ValueError(f"level {k} tables are inconsistent")
        if vocab_size is not None and (np.any(nxt < 0) or np.any(nxt >= vocab_size)
                                       or np.any(ctx < 0) or np.any(ctx >= vocab_size)):
            raise ValueError(f"level {k} refers to tokens outside the vocabulary")
        self.k, self.discount = k, float(discount)
        self.ctx, self.starts, self.nxt = ctx, starts, nxt
        self.cnt = cnt.astype(np.float64)
        self.contexts = {tuple(c): i for i, c in enumerate(ctx.tolist())}
        cumulative = np.concatenate([[0.0], np.cumsum(self.cnt)])
        self.total = cumulative[starts[1:]] - cumulative[starts[:-1]]
        self.gamma = self.discount * np.diff(starts) / self.total  # mass handed to the lower order
        self._followers: dict[int, dict[int, float]] = {}

    def followers(self, row: int) -> dict[int, float]:
        f = self._followers.get(row)
        if f is None:
            s, e = self.starts[row], self.starts[row + 1]
            f = self._followers[row] = dict(zip(self.nxt[s:e].tolist(), self.cnt[s:e].tolist()))
        return f


def _count(t: np.ndarray, order: int, V: int) -> list[tuple[np.ndarray, ...]]:
    """Per context length k < order: (contexts, starts, next ids, counts).

    Contexts are numbered densely one length at a time (a length-k context is its first token
    plus a length-(k-1) context), so codes stay below len(t) * V and never overflow int64.
    """
    T = len(t)
    hist = [np.zeros(T, np.int64)]  # hist[k][i]: the number of context t[i-k:i], for i >= k
    for k in range(1, order):
        h = np.full(T, -1, np.int64)
        if T > k:
            h[k:] = np.unique(hist[-1][k:] * V + t[:T - k], return_inverse=True)[1]
        hist.append(h)
    gram = [h * V + t for h in hist]  # (context, next token) pairs as one code
    out = []
    for k in range(order):
        if T <= k:
            out.append((np.zeros((0, k), np.int64), np.zeros(1, np.int64), np.zeros(0, np.int64),
                        np.zeros(0, np.int64)))
            continue
        if k == order - 1:
            codes, cnt = np.unique(gram[k][k:], return_counts=True)
        else:
            # Continuation count: how many distinct tokens precede (context, next); the start
            # of the text counts as one more distinct predecessor.
            first = np.unique(gram[k + 1][k + 1:], return_index=True)[1] + k + 1
            codes, cnt = np.unique(gram[k][np.concatenate([[k], first])], return_counts=True)
        ctx_ids, nxt = codes // V, codes % V
        first_pos = np.unique(hist[k][k:], return_index=True)[1] + k
        contexts = t[first_pos[:, None] + np.arange(-k, 0)]
        starts = np.searchsorted(ctx_ids, np.arange(len(first_pos) + 1))
        out.append((contexts, starts, nxt, cnt))
    return out


def _discount(cnt: np.ndarray) -> float:
    n1, n2 = int(np.sum(cnt == 1)), int(np.sum(cnt == 2))
    d = n1 / (n1 + 2 * n2) if n1 and n2 else 0.5
    return min(max(d, 0.05), 0.95)


def _kind(order: int) -> str:
    return {0: "uniform", 1: "unigram"}.get(order, "markov")


def _pack(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a, dtype="<i4").tobytes()).decode("ascii")


def _unpack(s: str) -> np.ndarray:
    raw = base64.b64decode(s.encode("ascii"), validate=True)
    if len(raw) % 4:
        raise ValueError("an array is truncated")
    return np.frombuffer(raw, dtype="<i4").astype(np.int64)
