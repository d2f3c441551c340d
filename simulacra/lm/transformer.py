"""A white-box transformer language model through PyTorch and Hugging Face transformers.

``TransformerLM.load(path)`` takes a GGUF file (transformers dequantizes it to float32) or a
Hugging Face model folder, and implements the ``LanguageModel`` protocol: encode, decode and
next-token ``logits(ids, cache)`` with a KV cache that is reused across calls.

The door for steering (control vectors) is the residual stream between decoder layers:
``add_hook(layer, fn)`` registers ``fn(hidden) -> hidden | None`` on the output of decoder layer
``layer`` (``lm.layers[layer]``); its return value replaces that layer's hidden states, so adding
a vector there steers the model. ``hidden_states(ids)`` reads the stream. Caches built before a
hook was added or removed are discarded automatically, since their keys and values are stale.

Converting a GGUF file is slow (transformers parses its metadata in Python, ~30 s for a 100 MB
file), so the converted model is kept as a Hugging Face folder under
``$SIMULACRA_HOME/cache/transformers/<sha256 of the file>/`` (safe to delete).
"""
from __future__ import annotations

import hashlib
import inspect
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from simulacra.errors import InputError, ModelError, ModelNotFound, require
from simulacra.storage import home

log = logging.getLogger(__name__)


@dataclass
class KVCache:
    """What ``logits`` hands back: the model's key/value cache and the token ids it covers.

    It is a handle updated in place: after ``logits(ids, cache)`` the same object covers ``ids``.
    Because it always records what its keys and values really hold, passing it back with any
    other ids is safe; only the part after the common prefix is recomputed.
    """

    past: Any = None  # transformers Cache (DynamicCache) or None
    ids: list[int] = field(default_factory=list)
    last_logits: np.ndarray | None = None  # logits after ``ids``, for a repeated call
    version: int = 0  # the model's hook version these keys and values were computed under


class TransformerLM:
    def __init__(self, model: Any, tokenizer: Any, *, threads: int | None = None):
        import torch

        if threads:
            torch.set_num_threads(threads)  # process-wide: torch has one intra-op pool
        self.model = model.eval()
        self.tokenizer = tokenizer
        config = model.config
        self.vocab_size: int = int(model.get_output_embeddings().weight.shape[0])
        self.max_context: int = int(getattr(config, "max_position_embeddings", 0) or 2048)
        self.eos_ids: frozenset[int] = _eos_ids(model, tokenizer)
        self.hooks: list[Any] = []  # torch RemovableHandles of the residual-stream hooks
        self._version = 0
        # Only the last position's logits are needed; older transformers name the argument differently.
        params = inspect.signature(model.forward).parameters
        self._keep_arg = next((a for a in ("logits_to_keep", "num_logits_to_keep") if a in params), None)
        self._fast_weights()

    @classmethod
    def load(cls, path: str | os.PathLike, *, threads: int | None = None) -> "TransformerLM":
        """Load a GGUF file or a Hugging Face model folder, float32 on the CPU."""
        require("torch", "torch")
        require("transformers", "torch")
        path = Path(path).expanduser()
        if not path.exists():
            raise ModelNotFound(f"no model at {path}; give a GGUF file or a Hugging Face model folder")
        if path.is_file():
            folder = _converted(path)
        elif (path / "config.json").exists():
            folder = path
        else:
            raise ModelError(f"{path} is a folder without config.json; give a GGUF file or a Hugging Face model folder")
        model, tokenizer = _load_folder(folder)
        return cls(model, tokenizer, threads=threads)

    # -- the LanguageModel protocol -------------------------------------------------------------

    def encode(self, text: str) -> list[int]:
        """Token ids as the model expects a fresh text, with the tokenizer's usual special tokens
        (a BOS where the model wants one)."""
        return list(self.tokenizer.encode(text))

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=False, clean_up_tokenization_spaces=False)

    def logits(self, ids: Sequence[int], cache: KVCache | None = None) -> tuple[np.ndarray, KVCache]:
        """Next-token logits after ``ids`` (float32, shape [vocab_size]) and the cache for ``ids``."""
        import torch

        ids = [int(i) for i in ids]
        if not ids:
            raise InputError("no tokens to continue; give the model a non-empty prompt")
        if len(ids) > self.max_context:
            raise InputError(f"{len(ids)} tokens exceed the model's context of {self.max_context}; shorten the prompt")
        cache = cache if cache is not None else KVCache()
        if cache.version != self._version:
            cache.past, cache.ids, cache.last_logits, cache.version = None, [], None, self._version
        keep = _common_prefix(cache.ids, ids)
        if keep == len(ids) == len(cache.ids) and cache.last_logits is not None:
            return cache.last_logits, cache
        keep = min(keep, len(ids) - 1)  # the last token must run to give logits
        try:
            with torch.inference_mode():
                self._crop(cache, keep)
                extra = {self._keep_arg: 1} if self._keep_arg else {}
                out = self.model(input_ids=torch.tensor([ids[keep:]]), past_key_values=cache.past,
                                 use_cache=True, **extra)
        except BaseException:
            cache.past, cache.ids, cache.last_logits = None, [], None  # half-updated: unusable
            raise
        cache.past, cache.ids = out.past_key_values, ids
        cache.last_logits = out.logits[0, -1].float().numpy()
        return cache.last_logits, cache

    # -- the residual stream ----------------------------------------------------------------------

    @property
    def layers(self) -> Sequence[Any]:
        """The decoder layers, in order: the residual stream runs through them."""
        return self.model.get_decoder().layers

    def add_hook(self, layer: int, fn: Callable[[Any], Any]) -> Any:
        """Call ``fn(hidden)`` on decoder layer ``layer``'s output hidden states [batch, seq, dim];
        a returned tensor replaces them. Returns the handle (also kept in ``self.hooks``)."""

        def hook(module, args, output):
            hidden = output[0] if isinstance(output, tuple) else output
            new = fn(hidden)
            if new is None:
                return None
            return (new, *output[1:]) if isinstance(output, tuple) else new

        handle = self.layers[layer].register_forward_hook(hook)
        self.hooks.append(handle)
        self._version += 1
        return handle

    def remove_hooks(self) -> None:
        for handle in self.hooks:
            handle.remove()
        self.hooks.clear()
        self._version += 1

    def hidden_states(self, ids: Sequence[int]) -> np.ndarray:
        """The residual stream for ``ids``: [n_layers + 1, len(ids), hidden] (embeddings first)."""
        import torch

        with torch.inference_mode():
            out = self.model(input_ids=torch.tensor([list(ids)]), output_hidden_states=True, use_cache=False)
        return torch.stack([h[0] for h in out.hidden_states]).float().numpy()

    # -- internals ----------------------------------------------------------------------------

    def _crop(self, cache: KVCache, keep: int) -> None:
        drop = len(cache.ids) - keep
        if keep == 0:
            cache.past = None
        elif drop > 0:
            cache.past.crop(-drop)  # a negative count means "remove this many" in every version
        cache.ids, cache.last_logits = cache.ids[:keep], None

    def _fast_weights(self) -> None:
        """Store every Linear weight transposed ([in, out] in memory, the same [out, in] view).

        A decode step multiplies one row vector by each weight; on CPU, BLAS streams a row-major
        [in, out] matrix faster than it does the transposed product (about 1.15-1.2x per step
        here). The values are unchanged, and so is everything that reads ``.weight``. Tied
        input/output embeddings are untied by this (the embedding lookup wants rows), which
        costs one more copy of the output matrix.
        """
        import torch

        with torch.no_grad():
            for module in self.model.modules():
                if isinstance(module, torch.nn.Linear) and module.weight.is_contiguous():
                    w = module.weight
                    module.weight = torch.nn.Parameter(w.detach().t().contiguous().t(), requires_grad=w.requires_grad)


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    if a[:n] == b[:n]:
        return n
    i = 0
    while a[i] == b[i]:
        i += 1
    return i


def _eos_ids(model: Any, tokenizer: Any) -> frozenset[int]:
    ids: set[int] = set()
    for source in (getattr(model, "generation_config", None), model.config, tokenizer):
        value = getattr(source, "eos_token_id", None)
        ids.update([value] if isinstance(value, int) else (value or []))
    return frozenset(int(i) for i in ids)


def _load_folder(folder: Path) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # a sub-second load: its progress bar is only noise in the CLI
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder)
        model = AutoModelForCausalLM.from_pretrained(folder, dtype="float32")
    except (OSError, ValueError, KeyError) as e:
        raise ModelError(f"transformers cannot load {folder}: {str(e).splitlines()[0]}") from None
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    return model, tokenizer


def _converted(gguf: Path) -> Path:
    """The Hugging Face folder converted from a GGUF file, converting it on first use."""
    folder = home() / "cache" / "transformers" / _sha256(gguf)[:32]
    if (folder / "config.json").exists():
        return folder
    from transformers import AutoModelForCausalLM, AutoTokenizer

    require("gguf", "torch")
    require("accelerate", "torch")  # transformers insists on it for GGUF files
    log.info("converting %s for transformers (once; cached in %s)", gguf, folder)
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype="float32")
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        raise ModelError(f"transformers cannot read {gguf}: {str(e).splitlines()[0]}") from None
    # The weights are plain float32 now; drop the GGUF marker so the folder saves and reloads as such.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.is_quantized = False
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".tmp-"))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        os.replace(tmp, folder)  # atomic: a half-written folder is never seen as converted
    except OSError:
        if not (folder / "config.json").exists():  # else another process converted it first
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()



