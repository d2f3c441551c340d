"""Turn-taking: completion prompts and stops, reading replies back, and mapping many speakers
onto chat turns and back."""
from hypothesis import given, settings, strategies as st
import pytest

from simulacra.chat import (IRC, ChatFormat, ChatTemplate, Colon, completion_prompt, from_chat_turns,
                            parse_reply, speakers, to_chat_turns, visible)
from simulacra.engine.base import Engine, complete_text
from simulacra.engine.fake import FakeBackend
from simulacra.errors import InputError
from simulacra.types import Message, Sampling

M = Message
CHATML = ("{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>\n' }}"
          "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
LLAMA3 = ("{{ bos_token }}{% for m in messages %}{{ '<|start_header_id|>' + m['role'] + '<|end_header_id|>\n\n'"
          " + m['content'] | trim + '<|eot_id|>' }}{% endfor %}"
          "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}")
STRICT = ("{% for m in messages %}{% if m['role'] != 'system' and (m['role'] == 'user') != "
          "(loop.index0 % 2 == (1 if messages[0]['role'] == 'system' else 0)) %}"
          "{{ raise_exception('roles must alternate') }}{% endif %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}")

ROOM = [M("alice", "hi all"), M("bob", "hey"), M("carol", "thinking", kind="thought"),
        M("dave", "waves", kind="action"), M(None, "rain starts", kind="observation"),
        M("erin", "so\nmany\nlines"), M("frank", "yo"), M("gwen", "hm")]


def test_visible_and_speakers():
    assert [m.content for m in visible(ROOM, "bob")] == [m.content for m in ROOM if m.kind != "thought"]
    assert M("carol", "thinking", kind="thought") in visible(ROOM, "carol", thoughts=True)
    assert speakers(ROOM, exclude="bob") == ["gwen", "frank", "erin", "dave", "carol", "alice"]


@pytest.mark.parametrize("fmt", [IRC(), Colon()], ids=["irc", "colon"])
def test_completion_prompt_text_formats(fmt):
    prompt, stops = completion_prompt(ROOM, "bob", fmt, system="A quiet tavern.")
    assert prompt.startswith("A quiet tavern.\n") and prompt.endswith("\n" + fmt.prefix("bob"))
    assert "thinking" not in prompt  # nobody's thoughts reach a shared transcript
    assert fmt.parse(prompt[len("A quiet tavern.\n"):]) == [m for m in ROOM if m.kind != "thought"] + [M("bob", "")]
    for other in ["alice", "carol", "dave", "erin", "frank", "gwen"]:  # all of them, no cap
        assert "\n" + fmt.prefix(other) in stops
    assert not any(s.startswith("\n" + fmt.prefix("bob")) for s in stops)


async def _reply(fmt, messages, author, scripted):
    """Run the prompt through the fake engine (stops enforced as with a real model) and parse."""
    prompt, stops = completion_prompt(messages, author, fmt)
    backend = FakeBackend([scripted])
    text = await complete_text(Engine(backend), prompt, Sampling(stop=tuple(stops), max_tokens=200))
    assert backend.prompts == [prompt]
    return parse_reply(author, text, fmt)


async def test_reply_ends_at_the_next_speakers_turn():
    scripted = " I'll get it.\nIt's heavy though.\n<alice> thanks bob\n<bob> anytime"
    assert await _reply(IRC(), ROOM, "bob", scripted) == [M("bob", "I'll get it.\nIt's heavy though.")]


async def test_multi_line_and_own_actions_survive_stops():
    scripted = " first\n\n<3 second\n* bob bows\n---\n<bob> a\n<gwen> in a section\n---\n<bob> b"
    # "<3 ..." is not a speaker; a section may quote other speakers; nothing here is another turn
    # except that the stop sequence "\n<gwen>" fires inside the section, which ends the reply.
    assert await _reply(IRC(), ROOM, "bob", scripted) == [
        M("bob", "first\n\n<3 second"), M("bob", "bows", kind="action"), M("bob", "a")]


def test_parse_reply_cuts_unknown_speakers_and_notices():
    assert parse_reply("bob", " hi\n<zed> new here", IRC()) == [M("bob", "hi")]
    assert parse_reply("bob", " hi\n-!- zed joined\n<bob> more", IRC()) == [M("bob", "hi")]
    assert parse_reply("bob", "\n<alice> hijacked", IRC()) == []
    assert parse_reply("Bob", " fine.\nAlice: ok", Colon()) == [M("Bob", "fine.")]
    assert parse_reply("bob", " waves", IRC(), kind="action") == [M("bob", "waves", kind="action")]


def test_chat_format_prompt_and_reply():
    fmt = ChatFormat(ChatTemplate(LLAMA3, "<|begin_of_text|>", "<|eot_id|>"))
    prompt, stops = completion_prompt(ROOM, "bob", fmt, system="Be bob.")
    turns = to_chat_turns(ROOM, "bob", system="Be bob.")
    assert prompt == fmt.template.render(turns, add_generation_prompt=True)[len("<|begin_of_text|>"):]
    assert prompt.endswith("<|start_header_id|>assistant<|end_header_id|>\n\n")
    assert "<|eot_id|>" in stops and "<|start_header_id|>" in stops
    continuation = "Sure thing.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nalice: more"
    assert parse_reply("bob", continuation, fmt) == [M("bob", "Sure thing.")]
    assert parse_reply("bob", "  <|eot_id|>", fmt) == []


def test_to_chat_turns_shape():
    turns = to_chat_turns(ROOM, "bob", system="Be bob.")
    assert turns == [
        {"role": "system", "content": "Be bob."},
        {"role": "user", "content": "alice: hi all"},
        {"role": "assistant", "content": "hey"},
        {"role": "user", "content": "* dave waves\n[rain starts]\nerin: so\nmany\nlines\nfrank: yo\ngwen: hm"},
    ]
    both = to_chat_turns([M("Utah Teapot", "hi"), M("bob", "yo"), M("x", "1"), M("y", "2")], "bob", names="both")
    assert both[0] == {"role": "user", "content": "Utah Teapot: hi", "name": "Utah_Teapot"}
    assert "name" not in both[2]  # two speakers share that turn
    field = to_chat_turns([M("x", "1"), M("y", "2"), M("y", "3")], "bob", names="field")
    assert field == [{"role": "user", "content": "1", "name": "x"},
                     {"role": "user", "content": "2\n3", "name": "y"}]
    with pytest.raises(InputError):
        to_chat_turns(ROOM, "bob", names="nope")


def test_thoughts_only_your_own_and_only_if_asked():
    convo = [M("bob", "plan", kind="thought"), M("alice", "secret", kind="thought"), M("bob", "hi")]
    assert to_chat_turns(convo, "bob") == [{"role": "assistant", "content": "hi"}]
    kept = to_chat_turns(convo, "bob", thoughts=True)
    assert kept == [{"role": "assistant", "content": "<think>\nplan\n</think>\nhi"}]
    assert from_chat_turns(kept, "bob") == [M("bob", "plan", kind="thought"), M("bob", "hi")]


def test_leading_system_messages_join_the_system_turn():
    convo = [M(None, "Rules.", kind="system"), M("alice", "hi"), M(None, "Later.", kind="system")]
    turns = to_chat_turns(convo, "bob", system="Be bob.")
    assert turns == [{"role": "system", "content": "Be bob.\n\nRules."},
                     {"role": "user", "content": "alice: hi\n[Later.]"}]


def test_strict_templates_accept_merged_turns():
    turns = to_chat_turns(ROOM + [M("bob", "a"), M("bob", "b")], "bob", system="s")
    roles = [t["role"] for t in turns]
    assert all(a != b for a, b in zip(roles, roles[1:]))
    ChatTemplate(STRICT).render(turns)  # raises if roles did not alternate


def test_from_chat_turns_as_a_server_receives_them():
    turns = [{"role": "system", "content": "Be mara."},
             {"role": "user", "name": "alice", "content": "hi"},
             {"role": "assistant", "content": "hello"},
             {"role": "user", "content": [{"type": "text", "text": "Note: no speaker here"}, {"type": "image_url"}]},
             {"role": "tool", "name": "dice", "content": "4"}]
    assert from_chat_turns(turns, "mara", "guest") == [
        M(None, "Be mara.", kind="system"), M("alice", "hi"), M("mara", "hello"),
        M("guest", "Note: no speaker here"), M("dice", "4", kind="observation")]


names = st.sampled_from(["alice", "bob", "Utah Teapot", "x-1", "mara"])
text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r"), max_size=15)
room = st.lists(st.one_of(
    st.builds(Message, names, text),
    st.builds(lambda a, c: Message(a, c, kind="action"), names.filter(lambda n: " " not in n), text),
    st.builds(lambda a, c: Message(a, c, kind="thought"), names, text),
), max_size=8)


@pytest.mark.parametrize("mode", ["prefix", "both"])
@given(convo=room)
@settings(max_examples=50, deadline=None)
def test_no_speaker_is_lost(mode, convo):
    turns = to_chat_turns(convo, "mara", names=mode)
    back = from_chat_turns(turns, "mara", names=["alice", "bob", "Utah Teapot", "x-1"])
    # Everyone who said something visible is still there, with what they said.
    said = lambda ms: {(m.author, m.content.strip()) for m in ms if m.kind != "thought" and m.author != "mara"}
    expected = said(m for m in convo if "\n" not in m.content and ": " not in m.content and m.content.strip())
    assert expected <= said(back)
    assert {m.author for m in convo if m.kind != "thought"} <= {m.author for m in back} | {None}


plain = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n:*[]"), max_size=15)
plain_room = st.lists(st.one_of(
    st.builds(Message, names, plain),
    st.builds(lambda a, c: Message(a, c, kind="action"), names.filter(lambda n: " " not in n), plain),
), max_size=8)


@given(convo=plain_room)
@settings(max_examples=50, deadline=None)
def test_others_messages_come_back_exactly(convo):
    # Without text that itself looks like "name: " lines, the inverse is exact for everyone
    # but the assistant (whose consecutive messages merge into one turn).
    back = from_chat_turns(to_chat_turns(convo, "mara"), "mara", names=["alice", "bob", "Utah Teapot", "x-1"])
    others = lambda ms: [(m.author, m.kind, m.content) for m in ms if m.author != "mara"]
    assert others(back) == others(convo)
