"""Chat templates: loading (GGUF, HF folders), sandboxed rendering, derived turn markers, and
the reference: our rendering equals transformers' ``apply_chat_template``."""
import json
from pathlib import Path

import pytest

from simulacra.chat import ChatFormat, ChatTemplate, read_gguf_metadata
from simulacra.errors import InputError, ModelError, ModelNotFound
from simulacra.types import Message

SMOL_DIR = Path.home() / ".local/share/simulacra/models/smollm2-135m-instruct"
SMOL = SMOL_DIR / "SmolLM2-135M-Instruct.Q4_1.gguf"
needs_smol = pytest.mark.skipif(not SMOL.exists(), reason="default model not pulled")

# Two templates written for these tests, so the reference check is not only ChatML.
LLAMA3 = """{{- bos_token }}
{%- if messages[0]['role'] == 'system' %}
    {%- set system = messages[0]['content'] | trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system = 'Cutting Knowledge Date: December 2023' %}
{%- endif %}
{{- '<|start_header_id|>system<|end_header_id|>\\n\\n' + system + '<|eot_id|>' }}
{%- for message in messages %}
    {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}
{%- endif %}"""

GEMMA = """{{ bos_token }}
{%- set ns = namespace(first=true) -%}
{%- if messages[0]['role'] == 'system' -%}
    {%- set prefix = messages[0]['content'] + '\\n\\n' -%}
    {%- set loop_messages = messages[1:] -%}
{%- else -%}
    {%- set prefix = '' -%}
    {%- set loop_messages = messages -%}
{%- endif -%}
{%- for message in loop_messages -%}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}
        {{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}
    {%- endif -%}
    {%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}
    {{ '<start_of_turn>' + role + '\\n' + (prefix if loop.first else '') + message['content'] | trim + '<end_of_turn>\\n' }}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{ '<start_of_turn>model\\n' }}
{%- endif -%}"""

CONVERSATIONS = [
    [{"role": "user", "content": "hi"}],
    [{"role": "system", "content": "You are Mara.\nSpeak plainly."},
     {"role": "user", "content": "hello\nthere"},
     {"role": "assistant", "content": "Hi!  How can I help?\n"},
     {"role": "user", "content": "tell me a joke"}],
    [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b\n\nc"},
     {"role": "user", "content": "  spaced  "}],
    [{"role": "system", "content": "s"}, {"role": "user", "content": "x"},
     {"role": "assistant", "content": "y"}],
]


def hf_folder(root: Path, template: str, bos: str, eos: str) -> Path:
    """A Hugging Face tokenizer folder: tokenizer_config.json plus a tiny word-level tokenizer."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    root.mkdir(parents=True, exist_ok=True)
    vocab = {t: i for i, t in enumerate(["[UNK]", bos, eos, "hi", "a"])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.save(str(root / "tokenizer.json"))
    config = {"tokenizer_class": "PreTrainedTokenizerFast", "chat_template": template,
              "bos_token": {"__type": "AddedToken", "content": bos, "lstrip": False, "normalized": False, "rstrip": False,
                            "single_word": False, "special": True},
              "eos_token": eos, "unk_token": "[UNK]"}
    (root / "tokenizer_config.json").write_text(json.dumps(config))
    return root


# -- the reference: transformers ---------------------------------------------------------

@pytest.mark.slow
@needs_smol
@pytest.mark.parametrize("generation", [False, True])
def test_smollm2_gguf_matches_transformers(generation):
    transformers = pytest.importorskip("transformers")
    reference = _smol_tokenizer(transformers)
    ours = ChatTemplate.from_gguf(SMOL)
    for convo in CONVERSATIONS:
        expected = reference.apply_chat_template(convo, tokenize=False, add_generation_prompt=generation)
        assert ours.render(convo, add_generation_prompt=generation) == expected


_smol_cache = []


def _smol_tokenizer(transformers):
    if not _smol_cache:  # 10-20 s to build from the GGUF: once per session
        _smol_cache.append(transformers.AutoTokenizer.from_pretrained(str(SMOL_DIR), gguf_file=SMOL.name))
    return _smol_cache[0]


@pytest.mark.slow
@pytest.mark.parametrize("name, template, bos, eos", [
    ("llama3", LLAMA3, "<|begin_of_text|>", "<|eot_id|>"),
    ("gemma", GEMMA, "<bos>", "<eos>"),
])
def test_hf_folder_templates_match_transformers(tmp_path, name, template, bos, eos):
    transformers = pytest.importorskip("transformers")
    folder = hf_folder(tmp_path / name, template, bos, eos)
    reference = transformers.AutoTokenizer.from_pretrained(str(folder))
    ours = ChatTemplate.from_hf(folder)
    assert (ours.bos_token, ours.eos_token) == (bos, eos)
    for convo in CONVERSATIONS:
        for generation in (False, True):
            expected = reference.apply_chat_template(convo, tokenize=False, add_generation_prompt=generation)
            assert ours.render(convo, add_generation_prompt=generation) == expected


# -- loading -------------------------------------------------------------------------------

def test_gguf_metadata_reader_on_a_written_file(tmp_path):
    gguf = pytest.importorskip("gguf")
    path = tmp_path / "tiny.gguf"
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_chat_template(LLAMA3)
    w.add_token_list(["<unk>", "<|begin_of_text|>", "<|eot_id|>", "hi"])
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_array("test.floats", [1.5, -2.0])
    w.add_uint64("test.big", 2**40)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    meta = read_gguf_metadata(path)
    assert meta["test.floats"] == [1.5, -2.0] and meta["test.big"] == 2**40
    assert read_gguf_metadata(path, wanted=["test.big"]) == {"test.big": 2**40}
    t = ChatTemplate.from_gguf(path)
    assert (t.source, t.bos_token, t.eos_token) == (LLAMA3, "<|begin_of_text|>", "<|eot_id|>")
    assert t.special == {"unk_token": "<unk>"}


@pytest.mark.slow
@needs_smol
def test_gguf_metadata_matches_gguf_reader():
    gguf = pytest.importorskip("gguf")
    reader = gguf.GGUFReader(str(SMOL))  # seconds: it indexes every tensor
    ours = read_gguf_metadata(SMOL)
    expected = {k: f.contents() for k, f in reader.fields.items() if not k.startswith("GGUF.")}
    assert ours.keys() == expected.keys()
    for key, value in expected.items():
        assert ours[key] == pytest.approx(value) if isinstance(value, float) else ours[key] == value, key


def test_bad_files(tmp_path):
    with pytest.raises(ModelNotFound):
        ChatTemplate.load(tmp_path / "missing.gguf")
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"GGUF\x03\x00\x00\x00" + b"\xff" * 20)
    with pytest.raises(ModelError):
        ChatTemplate.from_gguf(junk)
    junk.write_bytes(b"")
    with pytest.raises(ModelError, match="too short"):
        ChatTemplate.from_gguf(junk)
    junk.write_bytes(b"PK\x03\x04 not a gguf file at all")
    with pytest.raises(ModelError, match="magic"):
        ChatTemplate.from_gguf(junk)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="no chat template"):
        ChatTemplate.load(tmp_path / "empty")


def test_hf_folder_variants(tmp_path):
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({
        "chat_template": [{"name": "default", "template": "D"}, {"name": "tool_use", "template": "T"}],
        "bos_token": {"content": "<s>"}, "eos_token": "</s>"}))
    assert ChatTemplate.from_hf(tmp_path).source == "D"
    assert ChatTemplate.from_hf(tmp_path, name="tool_use").source == "T"
    (tmp_path / "chat_template.jinja").write_text("J")  # newer transformers save it apart
    t = ChatTemplate.load(tmp_path)
    assert (t.source, t.bos_token, t.eos_token) == ("J", "<s>", "</s>")


# -- rendering -----------------------------------------------------------------------------

def test_sandbox_blocks_escapes_and_mutation():
    for evil in ["{{ ''.__class__.__mro__[1].__subclasses__() }}",
                 "{% set _ = messages.append({'role': 'x'}) %}"]:
        with pytest.raises(InputError):
            ChatTemplate(evil).render([{"role": "user", "content": "hi"}])


def test_template_helpers():
    t = ChatTemplate("{{ raise_exception('roles must alternate') if messages|length > 1 }}"
                     "{{ messages[0] | tojson }}{% for m in messages %}{% if loop.first %}{% break %}{% endif %}{% endfor %}"
                     "{% generation %}{{ 'G' }}{% endgeneration %}{{ strftime_now('%Y')|length }}")
    out = t.render([{"role": "user", "content": "<é>", "name": None}])
    assert out == '{"role": "user", "content": "<é>"}G4'  # None keys dropped, no HTML escaping
    with pytest.raises(InputError, match="roles must alternate"):
        t.render([{"role": "user", "content": "a"}] * 2)


# -- markers and parsing -------------------------------------------------------------------

def test_markers_llama3_style():
    m = ChatTemplate(LLAMA3, "<|begin_of_text|>", "<|eot_id|>").markers
    assert m.bos == "<|begin_of_text|>" and m.trims
    assert m.generation == m.open["assistant"] == "<|start_header_id|>assistant<|end_header_id|>\n\n"
    assert m.open["system"] == "<|start_header_id|>system<|end_header_id|>\n\n"
    assert m.close["assistant"] == m.close["user"] == "<|eot_id|>"
    assert m.turn_start == "<|start_header_id|>"


def test_markers_gemma_style_folds_system():
    t = ChatTemplate(GEMMA, "<bos>", "<eos>")
    m = t.markers
    assert "system" not in m.open and m.generation == "<start_of_turn>model\n"
    assert m.close["user"] == "<end_of_turn>\n" and m.turn_start == "<start_of_turn>"
    fmt = ChatFormat(t)
    xs = [Message("user", "hi"), Message("assistant", "b\nc"), Message("user", "x")]
    assert fmt.parse(fmt.render(xs)) == xs


@needs_smol
def test_markers_and_parse_smollm2():
    t = ChatTemplate.load(SMOL)
    assert t.markers.bos == ""  # its bos token is <|im_start|>, but the template never writes it
    assert t.markers.close["system"] == "<|im_end|>\n"
    # tolerant of model output: a missing newline after the close, an unterminated last turn
    text = "<|im_start|>user\nhi<|im_end|><|im_start|>assistant\nhello<|im_end|>junk<|im_start|>user\nmore"
    assert t.parse(text) == [("user", "hi"), ("assistant", "hello"), ("user", "more")]
    assert t.parse("no markers at all") == []
