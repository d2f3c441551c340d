"""TransformerLM on the default GGUF model, checked against a stock transformers load of the
same weights. Slow: loads (and on first use converts) the model."""
import json
import os
from pathlib import Path

import numpy as np
import pytest

from simulacra.errors import InputError, ModelError, ModelNotFound
from simulacra.types import LanguageModel

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from simulacra.lm.transformer import KVCache, TransformerLM, _converted  # noqa: E402

TEXT = "The capital of France is Paris, and the capital of Germany is"
ATOL = 2e-3  # float32 sums in a different order (one token at a time vs. all at once)


def gguf() -> Path:
    home = Path(os.environ.get("SIMULACRA_HOME") or "~/.local/share/simulacra").expanduser()
    path = home / "models" / "smollm2-135m-instruct" / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not path.exists():
        pytest.skip(f"default model not pulled ({path}); run  simulacra models pull smollm2-135m-instruct")
    return path


@pytest.fixture(scope="module")
def lm() -> TransformerLM:
    return TransformerLM.load(gguf())


@pytest.fixture(scope="module")
def stock():
    """The same weights as transformers loads them, untouched: the reference."""
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(_converted(gguf()), dtype="float32").eval()


def reference(stock, ids) -> np.ndarray:
    with torch.inference_mode():
        return stock(torch.tensor([ids])).logits[0].numpy()


def test_errors_for_missing_and_wrong_paths(tmp_path):
    with pytest.raises(ModelNotFound):
        TransformerLM.load(tmp_path / "nope.gguf")
    with pytest.raises(ModelError, match="config.json"):
        TransformerLM.load(tmp_path)


@pytest.mark.slow
def test_loads_the_gguf_as_a_language_model(lm):
    assert isinstance(lm, LanguageModel)
    assert lm.vocab_size == lm.model.config.vocab_size == 49152
    assert lm.max_context == lm.model.config.max_position_embeddings
    assert lm.tokenizer.eos_token_id in lm.eos_ids
    assert next(lm.model.parameters()).dtype == torch.float32
    text = "Hello, wörld — 日本語 🙂"
    assert lm.decode(lm.encode(text)) == text


@pytest.mark.slow
def test_the_conversion_is_cached_as_a_plain_float32_folder(lm):
    folder = _converted(gguf())
    config = json.loads((folder / "config.json").read_text())
    assert "quantization_config" not in config
    assert (folder / "tokenizer.json").exists()


@pytest.mark.slow
def test_fresh_logits_match_a_plain_forward_pass(lm, stock):
    ids = lm.encode(TEXT)
    logits, cache = lm.logits(ids)
    assert logits.dtype == np.float32 and logits.shape == (lm.vocab_size,)
    np.testing.assert_allclose(logits, reference(stock, ids)[-1], atol=ATOL, rtol=0)
    assert cache.ids == ids


@pytest.mark.slow
def test_cached_logits_match_and_only_new_tokens_run(lm, stock):
    ids = lm.encode(TEXT)
    ref = reference(stock, ids)
    _, cache = lm.logits(ids[:5])
    seen = []
    handle = lm.model.get_input_embeddings().register_forward_hook(lambda m, a, out: seen.append(out.shape[1]))
    try:
        for n in range(6, len(ids) + 1):
            logits, cache = lm.logits(ids[:n], cache)
            np.testing.assert_allclose(logits, ref[n - 1], atol=ATOL, rtol=0)
    finally:
        handle.remove()
    assert seen == [1] * (len(ids) - 5)


@pytest.mark.slow
def test_diverging_shorter_and_repeated_ids_reuse_the_common_prefix(lm, stock):
    ids = lm.encode(TEXT)
    other = ids[:6] + lm.encode(" Berlin is a city")
    _, cache = lm.logits(ids)
    logits, cache = lm.logits(other, cache)  # diverges after 6 tokens: cropped, not rebuilt
    np.testing.assert_allclose(logits, reference(stock, other)[-1], atol=ATOL, rtol=0)
    assert cache.ids == other and cache.past.get_seq_length() == len(other)
    again, same = lm.logits(other, cache)
    assert same is cache and np.array_equal(again, logits)
    logits, cache = lm.logits(other[:4], cache)  # a prefix of what is cached
    np.testing.assert_allclose(logits, reference(stock, other[:4])[-1], atol=ATOL, rtol=0)
    logits, _ = lm.logits(ids, KVCache())
    np.testing.assert_allclose(logits, reference(stock, ids)[-1], atol=ATOL, rtol=0)


@pytest.mark.slow
def test_too_long_or_empty_input_is_refused(lm):
    with pytest.raises(InputError):
        lm.logits([])
    with pytest.raises(InputError, match="context"):
        lm.logits([1] * (lm.max_context + 1))


@pytest.mark.slow
def test_hooks_steer_the_residual_stream_and_invalidate_caches(lm):
    ids = lm.encode(TEXT)
    plain, cache = lm.logits(ids)
    hidden = lm.hidden_states(ids)
    assert hidden.shape == (len(lm.layers) + 1, len(ids), lm.model.config.hidden_size)
    with torch.inference_mode():
        embedded = lm.model.get_input_embeddings()(torch.tensor([ids]))[0].numpy()
    np.testing.assert_allclose(hidden[0], embedded)

    lm.add_hook(10, lambda h: None)  # a hook that only reads changes nothing
    np.testing.assert_allclose(lm.logits(ids)[0], plain, atol=ATOL, rtol=0)
    direction = torch.from_numpy(hidden[11, -1] - hidden[11, 0])
    lm.add_hook(10, lambda h: h + 4 * direction)
    steered, cache_after = lm.logits(ids, cache)  # the old cache must not be used as is
    fresh, _ = lm.logits(ids)
    np.testing.assert_allclose(steered, fresh, atol=ATOL, rtol=0)
    assert np.abs(steered - plain).max() > 1.0
    lm.remove_hooks()
    np.testing.assert_allclose(lm.logits(ids, cache_after)[0], plain, atol=ATOL, rtol=0)
