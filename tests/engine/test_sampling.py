import math

import numpy as np
import pytest

from simulacra.engine.sampling import (Sampler, apply_frequency_presence, apply_logit_bias,
                                       apply_repetition_penalty, draw, log_softmax, min_p, softmax,
                                       top_k, top_logprobs, top_p)
from simulacra.errors import InputError
from simulacra.types import Sampling


def kept(logits) -> set[int]:
    return {int(i) for i in np.flatnonzero(np.isfinite(logits))}


def logits_of(probs) -> np.ndarray:
    return np.log(np.asarray(probs, dtype=np.float64))


PROBS = [0.05, 0.5, 0.15, 0.3]  # ranked: 1 (0.5), 3 (0.3), 2 (0.15), 0 (0.05)


def test_log_softmax_matches_the_definition():
    x = np.array([1.0, 2.0, -3.0, 0.5])
    expected = x - math.log(sum(math.exp(v) for v in x))
    assert np.allclose(log_softmax(x), expected)
    assert math.isclose(softmax(x).sum(), 1.0)
    big = np.array([1000.0, 999.0])  # no overflow
    assert np.allclose(softmax(big), [1 / (1 + math.exp(-1)), 1 / (1 + math.exp(1))])


def test_top_k_keeps_the_k_highest():
    x = np.array([0.1, 3.0, -1.0, 2.0, 1.5])
    assert kept(top_k(x, 2)) == {1, 3}
    assert kept(top_k(x, 1)) == {1}
    assert kept(top_k(x, 0)) == set(range(5))
    assert kept(top_k(x, 99)) == set(range(5))
    assert np.array_equal(top_k(x, 2)[[1, 3]], x[[1, 3]])  # survivors untouched


@pytest.mark.parametrize("p, expected", [
    (0.5, {1}),          # the top token alone reaches 0.5
    (0.51, {1, 3}),
    (0.8, {1, 3}),       # 0.5 + 0.3 reaches 0.8 exactly
    (0.81, {1, 3, 2}),
    (0.95, {1, 3, 2}),
    (0.96, {0, 1, 2, 3}),
    (0.01, {1}),         # at least one token always stays
    (1.0, {0, 1, 2, 3}),
])
def test_top_p_keeps_the_smallest_set_reaching_p(p, expected):
    assert kept(top_p(logits_of(PROBS), p)) == expected


@pytest.mark.parametrize("p, expected", [
    (0.0, {0, 1, 2, 3}),
    (0.1, {0, 1, 2, 3}),  # 0.05 >= 0.1 * 0.5
    (0.11, {1, 2, 3}),
    (0.3, {1, 2, 3}),     # 0.15 >= 0.3 * 0.5
    (0.31, {1, 3}),
    (0.61, {1}),
])
def test_min_p_keeps_tokens_at_least_p_times_the_best(p, expected):
    assert kept(min_p(logits_of(PROBS), p)) == expected


def test_filters_do_not_change_their_input():
    x = logits_of(PROBS)
    before = x.copy()
    top_k(x, 1), top_p(x, 0.5), min_p(x, 0.5), apply_logit_bias(x, {0: 5.0})
    apply_repetition_penalty(x, [0, 1], 2.0), apply_frequency_presence(x, {0: 2}, 1.0, 1.0)
    assert np.array_equal(x, before)


def test_repetition_penalty_divides_positive_and_multiplies_negative_seen_logits():
    x = np.array([2.0, -2.0, 4.0, -1.0])
    out = apply_repetition_penalty(x, [0, 1, 1], 2.0)
    assert np.array_equal(out, [1.0, -4.0, 4.0, -1.0])
    assert np.array_equal(apply_repetition_penalty(x, [0, 1], 1.0), x)
    assert np.array_equal(apply_repetition_penalty(x, [], 2.0), x)


def test_frequency_and_presence_penalties_follow_openai():
    x = np.zeros(4)
    out = apply_frequency_presence(x, {1: 3, 2: 1}, frequency=0.5, presence=0.25)
    assert np.allclose(out, [0.0, -(3 * 0.5 + 0.25), -(0.5 + 0.25), 0.0])


def test_logit_bias_adds_and_rejects_tokens_outside_the_vocabulary():
    x = np.zeros(3)
    assert np.array_equal(apply_logit_bias(x, {2: 1.5, 0: -100}), [-100.0, 0.0, 1.5])
    with pytest.raises(InputError, match="outside the vocabulary"):
        apply_logit_bias(x, {3: 1.0})


def test_greedy_is_the_argmax_after_bias_and_penalties():
    x = np.array([0.0, 5.0, 4.0, 1.0], dtype=np.float32)
    assert Sampler(Sampling(temperature=0)).choose(x) == 1
    assert Sampler(Sampling(temperature=0, logit_bias={3: 10})).choose(x) == 3
    # token 1 was in the prompt: 5 / 2 = 2.5 < 4
    assert Sampler(Sampling(temperature=0, repetition_penalty=2.0), prompt_ids=[1]).choose(x) == 2


def test_greedy_with_frequency_penalty_moves_on_after_repeating():
    x = np.array([0.0, 3.0, 2.5])
    sampler = Sampler(Sampling(temperature=0, frequency_penalty=0.3))
    # 3.0, then 2.7 > 2.5, then 2.4 < 2.5
    assert [sampler.choose(x) for _ in range(3)] == [1, 1, 2]
    # presence penalties only see generated tokens, not the prompt
    sampler = Sampler(Sampling(temperature=0, presence_penalty=1.0), prompt_ids=[1])
    assert [sampler.choose(x) for _ in range(2)] == [1, 2]


def test_the_same_seed_gives_the_same_tokens():
    rng = np.random.default_rng(0)
    x = rng.normal(size=500)
    run = lambda seed: [Sampler(Sampling(temperature=1.0, seed=seed)).choose(x) for _ in range(1)] + \
        (lambda s: [s.choose(x) for _ in range(50)])(Sampler(Sampling(temperature=1.0, seed=seed)))
    assert run(7) == run(7)
    assert run(7) != run(8)


def test_draws_at_temperature_one_follow_the_softmax():
    probs = np.array([0.5, 0.25, 0.15, 0.1])
    sampler = Sampler(Sampling(temperature=1.0, seed=1234))
    n = 20000
    counts = np.bincount([sampler.choose(np.log(probs)) for _ in range(n)], minlength=4)
    chi2 = float(((counts - n * probs) ** 2 / (n * probs)).sum())
    assert chi2 < 16.27  # chi-square, 3 degrees of freedom, p = 0.001


def test_temperature_sharpens_and_top_k_restricts_the_draws():
    probs = np.array([0.4, 0.35, 0.25])
    cold = Sampler(Sampling(temperature=0.2, seed=1))
    draws = [cold.choose(np.log(probs)) for _ in range(2000)]
    # at T=0.2 the odds of token 0 over 1 are (0.4/0.35)^5 = 1.95
    ratio = draws.count(0) / draws.count(1)
    assert 1.7 < ratio < 2.25
    topk = Sampler(Sampling(temperature=1.0, top_k=2, seed=1))
    assert {topk.choose(np.log(probs)) for _ in range(500)} == {0, 1}
    nucleus = Sampler(Sampling(temperature=1.0, top_p=0.7, seed=1))
    assert {nucleus.choose(np.log(probs)) for _ in range(500)} == {0, 1}


def test_draw_never_picks_a_removed_token():
    rng = np.random.default_rng(0)
    x = np.array([-np.inf, 0.0, -np.inf, 0.0, -np.inf])
    assert {draw(x, rng) for _ in range(300)} == {1, 3}


def test_removing_every_token_is_an_input_error():
    with pytest.raises(InputError):
        Sampler(Sampling(temperature=1.0, logit_bias={0: -np.inf, 1: -np.inf})).choose(np.zeros(2))


def test_top_logprobs_reports_the_chosen_token_and_the_best_k():
    probs = np.array(PROBS)
    chosen, best = top_logprobs(np.log(probs) + 3.0, 2, k=2)  # shifting logits changes nothing
    assert math.isclose(chosen, math.log(0.15))
    assert [t for t, _ in best] == [1, 3]
    assert np.allclose([lp for _, lp in best], np.log([0.5, 0.3]))
    assert top_logprobs(np.log(probs), 0, k=0) == (pytest.approx(math.log(0.05)), [])
