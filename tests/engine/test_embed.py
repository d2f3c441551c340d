"""Embedders: shape and normalisation, hash determinism, the disk cache, MiniLM against transformers."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from simulacra.engine.embed import CachedEmbedder, Embedder, HashEmbedder, embedder_by_name
from simulacra.errors import ConfigError


class Counting(Embedder):
    """Wraps an embedder and counts the texts it is asked to embed."""

    def __init__(self, inner: Embedder):
        self.inner, self.name, self.dim = inner, inner.name, inner.dim
        self.calls, self.texts = 0, 0

    def _embed(self, texts):
        self.calls += 1
        self.texts += len(texts)
        return self.inner.embed(texts)


def test_hash_embedder_rows_are_unit_float32():
    e = HashEmbedder(64)
    out = e.embed(["the cat sat", "a much longer sentence about nothing in particular", ""])
    assert out.shape == (3, 64) and out.dtype == np.float32
    assert np.allclose(np.linalg.norm(out[:2], axis=1), 1.0, atol=1e-6)
    assert not out[2].any()  # empty text: a zero vector, cosine 0 to everything
    assert e.embed([]).shape == (0, 64)


def test_hash_embedder_ranks_shared_words_higher():
    e = HashEmbedder()
    q, near, far = e.embed(["Mara runs the tavern", "the tavern that Mara runs", "stock prices fell sharply"])
    assert q @ near > 0.6 > q @ far


def test_hash_embedder_is_the_same_in_another_process():
    # Python salts str hashes per process; the hash embedder must not depend on that.
    code = "from simulacra.engine.embed import HashEmbedder; print(HashEmbedder(32).embed(['hello world'])[0].tolist())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONHASHSEED": "12345", "PATH": ""}).stdout
    assert np.allclose(eval(out), HashEmbedder(32).embed(["hello world"])[0], atol=1e-7)


def test_cache_second_start_calls_the_model_zero_times(tmp_path):
    texts = ["one", "two", "three", "two"]
    first = Counting(HashEmbedder())
    a = CachedEmbedder(first, tmp_path).embed(texts)
    assert first.texts == 3  # the duplicate is embedded once
    second = Counting(HashEmbedder())  # a fresh process: new model, same cache folder
    b = CachedEmbedder(second, tmp_path).embed(texts)
    assert second.calls == 0
    assert np.array_equal(a, b)
    assert np.allclose(b, HashEmbedder().embed(texts))


def test_cache_embeds_only_new_texts_and_keeps_models_apart(tmp_path):
    inner = Counting(HashEmbedder())
    cache = CachedEmbedder(inner, tmp_path)
    cache.embed(["old"])
    cache.embed(["old", "new"])
    assert inner.texts == 2
    other = Counting(HashEmbedder(128))  # another model name: its own keys, its own vectors
    out = CachedEmbedder(other, tmp_path).embed(["old"])
    assert other.texts == 1 and out.shape == (1, 128)


def test_embedder_by_name():
    assert embedder_by_name("hash-48").dim == 48
    assert embedder_by_name("hash").name == "hash-256"
    with pytest.raises(ConfigError, match="unknown embedder"):
        embedder_by_name("word2vec")


def test_importing_embed_does_not_load_torch():
    code = ("import sys, simulacra.engine.embed, simulacra.engine.vectors, simulacra.memory; "
            "print(any(m in sys.modules for m in ('torch', 'sentence_transformers', 'usearch')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


@pytest.mark.slow
def test_minilm_matches_plain_transformers_mean_pooling():
    """Reference: the model card's recipe (transformers, mean pooling, L2 norm) by hand."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    from simulacra.engine.embed import get_embedder

    texts = ["A cat sits on the mat.", "A kitten rests on a rug.", "The stock market crashed today."]
    e = get_embedder()
    assert e is get_embedder() and e.dim == 384
    ours = e.embed(texts)
    assert ours.shape == (3, 384) and np.allclose(np.linalg.norm(ours, axis=1), 1, atol=1e-5)

    tok = AutoTokenizer.from_pretrained(str(e.path))
    model = AutoModel.from_pretrained(str(e.path))
    batch = tok(texts, padding=True, truncation=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    ref = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=1).numpy()
    assert np.allclose(ours, ref, atol=1e-4)
    assert ours[0] @ ours[1] > ours[0] @ ours[2]
