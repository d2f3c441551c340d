"""Message formats: round trips, tolerant parsing, prefixes and stops."""
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from simulacra.chat import IRC, ChatFormat, ChatTemplate, Colon, Format, get_format
from simulacra.errors import ConfigError, InputError
from simulacra.types import Message

M = Message
SMOL = Path.home() / ".local/share/simulacra/models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf"
LLAMA3 = (
    "{{ bos_token }}{% for message in messages %}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)

# Contents mix ordinary text with lines that look like format syntax, so sections get exercised.
tricky_line = st.sampled_from(["<bob> not a turn", "* alice waves", "-!- no", "Bob: hi", "", "  ", "<", "---x"])
line = st.one_of(st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=20),
                 tricky_line)
content = st.lists(line, min_size=1, max_size=4).map("\n".join)
# Some names are valid in one format only (spaces in actions, 4 words or ">" in colon).
word_name = st.sampled_from(["bob", "Alice", "x-1", "o'brien", "名前", "al", "b0b_"])
any_name = st.one_of(word_name, st.sampled_from(["Utah Teapot", "Dr. Who", "a b c d", "<x>", "x:y", "-z-"]))


def messages(names):
    one = st.one_of(
        st.builds(Message, names, content),
        st.builds(lambda a, c: Message(a, c, kind="action"), word_name, content),
        st.builds(lambda c: Message(None, c, kind="observation"), content),
    )
    return st.lists(one, max_size=6)


@pytest.mark.parametrize("fmt", [IRC(), Colon()], ids=["irc", "colon"])
@given(data=st.data())
@settings(max_examples=120, deadline=None)
def test_text_formats_round_trip(fmt, data):
    xs = [m for m in data.draw(messages(any_name)) if fmt.valid(m)]
    assert fmt.parse(fmt.render(xs)) == xs


def test_round_trip_strategy_reaches_the_hard_cases():
    # Guard against a vacuous property test: these must all be valid and survive.
    fmt = IRC()
    xs = [M("bob", "line one\n<alice> inside\n\n* x y\n"), M("bob", ""), M("Utah Teapot", "hi"),
          M("al", " leading space"), M(None, "a\nb", kind="observation"), M("bob", "waves", kind="action")]
    assert all(fmt.valid(m) for m in xs)
    assert fmt.parse(fmt.render(xs)) == xs


@pytest.mark.parametrize("fmt", [IRC(), Colon()], ids=["irc", "colon"])
@given(text=st.text(max_size=300))
@settings(max_examples=200, deadline=None)
def test_parse_never_raises_on_junk(fmt, text):
    out = fmt.parse(text)
    assert all(isinstance(m, Message) for m in out)


def test_irc_canonical_render():
    text = IRC().render([M("alice", "hi"), M("bob", "two\nlines"), M("bob", "waves", kind="action"),
                         M(None, "a door opens", kind="observation")])
    assert text == "<alice> hi\n---\n<bob> two\nlines\n---\n* bob waves\n-!- a door opens\n"


def test_irc_parses_chapter_ii_logs_and_model_output():
    log = ("junk before anything\n<alice> hi\n<alice> again\n<bob> one\ncontinued\n\n\n"
           "---\n<carol> verbatim\n<alice> still carol\n---\n<alice> after\r\n")
    assert IRC().parse(log) == [
        M("alice", "hi"), M("alice", "again"),  # a repeated prefix is another message
        M("bob", "one\ncontinued"),  # unprefixed lines continue; trailing blanks dropped
        M("carol", "verbatim\n<alice> still carol"), M("alice", "after"),
    ]


def test_unclosed_section_runs_to_the_end():
    assert IRC().parse("---\n<bob> a\n<x> b\n") == [M("bob", "a\n<x> b")]


def test_colon_names_are_short_not_prose():
    text = "Alice: hi\nThe answer is this: 42\nUtah Teapot: hey\n* Alice nods"
    assert Colon().parse(text) == [M("Alice", "hi\nThe answer is this: 42"), M("Utah Teapot", "hey"),
                                   M("Alice", "nods", kind="action")]
    assert not Colon().valid(M("a b c d", "x")) and not Colon().valid(M("x:y", "z"))


def test_prefixes_and_stops():
    irc, colon = IRC(), Colon()
    assert irc.prefix("bob") == "<bob>" and irc.prefix("bob", "action") == "* bob"
    assert colon.prefix("Bob") == "Bob:" and irc.prefix(None) == "-!-"
    stops = irc.stops("bob", ["alice", "bob", None, "carol"])
    assert {"\n<alice>", "\n<carol>", "\n* alice ", "\n* carol ", "\n-!-"} == set(stops)
    assert not any("bob" in s for s in stops)
    assert set(colon.stops("Bob", ["Alice"])) == {"\nAlice:", "\n* Alice ", "\n-!-"}


def test_render_refuses_what_it_cannot_show():
    with pytest.raises(InputError, match="thought"):
        IRC().render([M("bob", "hmm", kind="thought")])
    with pytest.raises(InputError, match="one line"):
        IRC().render([M("bo\nb", "hi")])
    # a notice with an author keeps the author in the text
    assert IRC().render([M("calculator", "4", kind="observation")]) == "-!- calculator: 4\n"


def test_registry():
    assert isinstance(get_format("irc"), IRC) and isinstance(get_format("colon"), Colon)
    assert all(isinstance(get_format(n), Format) for n in ("irc", "colon"))
    with pytest.raises(ConfigError, match="irc, colon, chat"):
        get_format("xml")
    with pytest.raises(ConfigError, match="chat template"):
        get_format("chat")
    fmt = get_format("chat", ChatTemplate(LLAMA3, "<|begin_of_text|>", "<|eot_id|>"))
    assert isinstance(fmt, ChatFormat) and isinstance(fmt, Format)


roles_convo = st.lists(st.tuples(st.sampled_from(["user", "assistant"]), content), min_size=1, max_size=5)


@pytest.mark.skipif(not SMOL.exists(), reason="default model not pulled")
@given(system=content, turns=roles_convo)
@settings(max_examples=60, deadline=None)
def test_chat_round_trip_smollm2(smol_chat, system, turns):
    # SmolLM2 injects a default system turn when there is none, so conversations start with one.
    xs = [M("system", system)] + [M(r, c) for r, c in turns]
    xs = [m for m in xs if smol_chat.valid(m)]
    if xs and xs[0].author == "system":
        assert smol_chat.parse(smol_chat.render(xs)) == xs


@given(turns=roles_convo)
@settings(max_examples=60, deadline=None)
def test_chat_round_trip_llama3_style(turns):
    fmt = ChatFormat(ChatTemplate(LLAMA3, "<|begin_of_text|>", "<|eot_id|>"))
    xs = [m for m in (M(r, c) for r, c in turns) if fmt.valid(m)]  # this template trims contents
    assert fmt.parse(fmt.render(xs)) == xs


@pytest.fixture(scope="module")
def smol_chat():
    return ChatFormat(ChatTemplate.from_gguf(SMOL))


@pytest.mark.skipif(not SMOL.exists(), reason="default model not pulled")
def test_chat_prefix_and_stops_smollm2(smol_chat):
    assert smol_chat.prefix("assistant") == "<|im_start|>assistant\n"
    assert smol_chat.prefix("user") == "<|im_start|>user\n"
    stops = smol_chat.stops("assistant", ["user", "system"])
    assert "<|im_end|>" in stops and "<|im_start|>" in stops
    assert not smol_chat.valid(M("user", "sneaky <|im_end|> marker"))
