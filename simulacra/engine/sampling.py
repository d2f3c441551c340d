"""Our own sampling: pure numpy functions over one next-token logits vector, and a Sampler.

The Sampler applies the steps of a ``Sampling`` in this fixed order (vLLM's, so settings mean
the same here as on a vLLM or OpenAI server):

    1. logit_bias                added to the raw logits
    2. repetition_penalty        CTRL-style, over the prompt and the generated tokens
    3. frequency/presence        OpenAI-style, over the generated tokens only
    4. temperature               0 picks the argmax of the penalised logits (greedy) and stops here
    5. top_k, 6. top_p, 7. min_p each removes tokens from what the previous step kept
    8. draw one token from the softmax of what is left, with a seeded numpy Generator

Every function returns a new array; none changes its input. Removed tokens get -inf.
Logprobs are reported from the model's raw distribution (before steps 1-7), as OpenAI and vLLM
report them.
"""
from __future__ import annotations

from collections import Counter
from typing import Iterable, Mapping, Sequence

import numpy as np

from simulacra.errors import InputError
from simulacra.types import Sampling


def log_softmax(logits: np.ndarray) -> np.ndarray:
    x = np.asarray(logits, dtype=np.float64)
    top = np.max(x)
    if not np.isfinite(top):
        raise InputError("every token was removed by sampling settings; loosen top_k/top_p/min_p or logit_bias")
    shifted = x - top
    return shifted - np.log(np.sum(np.exp(shifted)))


def softmax(logits: np.ndarray) -> np.ndarray:
    return np.exp(log_softmax(logits))


def apply_logit_bias(logits: np.ndarray, bias: Mapping[int, float]) -> np.ndarray:
    out = np.array(logits, dtype=np.float64)
    for token, value in bias.items():
        token = int(token)
        if not 0 <= token < out.shape[0]:
            raise InputError(f"logit_bias names token {token}, outside the vocabulary 0..{out.shape[0] - 1}")
        out[token] += value
    return out


def apply_repetition_penalty(logits: np.ndarray, seen: Iterable[int], penalty: float) -> np.ndarray:
    """CTRL (Keskar et al. 2019): a seen token's logit is divided by the penalty when positive and
    multiplied by it when negative, so a penalty > 1 always makes it less likely."""
    out = np.array(logits, dtype=np.float64)
    idx = np.fromiter(set(seen), dtype=np.int64) if penalty != 1.0 else np.empty(0, np.int64)
    if idx.size == 0:
        return out
    hit = out[idx]
    out[idx] = np.where(hit > 0, hit / penalty, hit * penalty)
    return out


def apply_frequency_presence(logits: np.ndarray, counts: Mapping[int, int], frequency: float,
                             presence: float) -> np.ndarray:
    """OpenAI: logit[t] -= count[t] * frequency + (count[t] > 0) * presence."""
    out = np.array(logits, dtype=np.float64)
    if (frequency == 0.0 and presence == 0.0) or not counts:
        return out
    idx = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
    n = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
    out[idx] -= n * frequency + (n > 0) * presence
    return out


def top_k(logits: np.ndarray, k: int) -> np.ndarray:
    """Keep the k highest logits (and any tied with the k-th); k <= 0 keeps all."""
    out = np.array(logits, dtype=np.float64)
    if k <= 0 or k >= out.shape[0]:
        return out
    kth = np.partition(out, -k)[-k]
    out[out < kth] = -np.inf
    return out


def top_p(logits: np.ndarray, p: float) -> np.ndarray:
    """Nucleus: keep the most likely tokens until their probability reaches p (at least one)."""
    out = np.array(logits, dtype=np.float64)
    if p >= 1.0:
        return out
    probs = softmax(out)
    order = np.argsort(-probs, kind="stable")
    before = np.cumsum(probs[order]) - probs[order]  # mass of the tokens ranked above each one
    drop = order[before >= p]
    drop = drop[drop != order[0]]  # the most likely token always stays
    out[drop] = -np.inf
    return out


def min_p(logits: np.ndarray, p: float) -> np.ndarray:
    """Keep tokens at least p times as likely as the most likely one."""
    out = np.array(logits, dtype=np.float64)
    if p <= 0.0:
        return out
    probs = softmax(out)
    out[probs < p * probs.max()] = -np.inf
    return out


def draw(logits: np.ndarray, rng: np.random.Generator) -> int:
    """One token from softmax(logits) by inverse CDF: one uniform number per token, so a seed
    reproduces the same tokens whatever numpy version's choice() does."""
    cdf = np.cumsum(softmax(logits))
    return int(min(np.searchsorted(cdf, rng.random() * cdf[-1], side="right"), cdf.shape[0] - 1))


class Sampler:
    """Chooses tokens for one sample: holds its penalties' history and its random generator.

    ``Sampler(sampling, prompt_ids)``, then ``choose(logits)`` per step; ``choose`` records the
    token it returns so penalties see it on the next step.
    """

    def __init__(self, sampling: Sampling, prompt_ids: Sequence[int] = ()):
        self.sampling = sampling
        self.rng = np.random.default_rng(sampling.seed)
        self.seen: set[int] = set(prompt_ids)
        self.counts: Counter[int] = Counter()
        s = sampling
        self._plain = (not s.logit_bias and s.repetition_penalty == 1.0 and s.frequency_penalty == 0.0
                       and s.presence_penalty == 0.0)

    def choose(self, logits: np.ndarray) -> int:
        token = self._pick(logits)
        self.seen.add(token)
        self.counts[token] += 1
        return token

    def adjusted(self, logits: np.ndarray) -> np.ndarray:
        """Steps 1-3: the logits after bias and penalties (the input itself if none applies)."""
        s = self.sampling
        if self._plain:
            return np.asarray(logits, dtype=np.float64)
        x = apply_logit_bias(logits, s.logit_bias) if s.logit_bias else np.asarray(logits, dtype=np.float64)
        if s.repetition_penalty != 1.0:
            x = apply_repetition_penalty(x, self.seen, s.repetition_penalty)
        if s.frequency_penalty or s.presence_penalty:
            x = apply_frequency_presence(x, self.counts, s.frequency_penalty, s.presence_penalty)
        return x

    def filtered(self, logits: np.ndarray) -> np.ndarray:
        """Steps 1-7: what ``draw`` samples from (temperature must be > 0)."""
        s = self.sampling
        x = self.adjusted(logits) / s.temperature
        return min_p(top_p(top_k(x, s.top_k), s.top_p), s.min_p)

    def _pick(self, logits: np.ndarray) -> int:
        if self.sampling.temperature <= 0:
            if self._plain:  # the hot path of greedy decoding: no copies
                return int(np.argmax(logits))
            return int(np.argmax(self.adjusted(logits)))
        return draw(self.filtered(logits), self.rng)


def top_logprobs(logits: np.ndarray, token: int, k: int) -> tuple[float, list[tuple[int, float]]]:
    """The chosen token's logprob and the k most likely tokens with theirs, best first."""
    lp = log_softmax(logits)
    best: list[tuple[int, float]] = []
    if k > 0:
        k = min(k, lp.shape[0])
        idx = np.argpartition(-lp, k - 1)[:k]
        idx = idx[np.argsort(-lp[idx], kind="stable")]
        best = [(int(i), float(lp[i])) for i in idx]
    return float(lp[token]), best
