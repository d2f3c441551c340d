"""The OpenAI routes through the official openai client against a real uvicorn server: ems and
raw models, chat and completions, streaming and not, n, stop, max_tokens, logprobs, usage."""
from __future__ import annotations

import httpx
import openai
import pytest

from simulacra.engine.fake import _PIECES
from simulacra.ems.respond import Reply
from simulacra.types import Message

KEY = "test-key-123"  # as in conftest.py
EM_REPLY = "Hi there, friend. How are you today?"
FAKE = "fake:Hello there, my friend."
FAKE_REPLY = FAKE.removeprefix("fake:")


@pytest.fixture(autouse=True, scope="module")
def _same_as_conftest(kit):
    assert (kit.KEY, kit.EM_REPLY, kit.FAKE) == (KEY, EM_REPLY, FAKE)


def pieces(text: str) -> int:
    return len(_PIECES.findall(text))


def test_models_lists_ems_and_specs(client):
    ids = {m.id: m.owned_by for m in client.models.list()}
    assert ids["mara"] == "simulacra-em"
    assert ids[FAKE] == "simulacra"
    assert client.models.retrieve("mara").id == "mara"


# --- ems ---

def test_em_chat_speaks_in_character_with_the_requests_names(client, engines):
    r = client.chat.completions.create(model="mara", messages=[
        {"role": "system", "content": "A tavern."},
        {"role": "user", "content": "hello mara", "name": "bob"},
        {"role": "assistant", "content": "Welcome."},
        {"role": "user", "content": "anyone here?"}])
    assert r.object == "chat.completion" and r.model == "mara"
    assert r.choices[0].message.role == "assistant"
    assert r.choices[0].message.content == EM_REPLY
    assert r.choices[0].finish_reason == "stop"
    prompt = engines[f"fake:{EM_REPLY}"].backend.prompts[-1]
    assert "<bob> hello mara\n<mara> Welcome.\n<user> anyone here?\n<mara>" in prompt
    assert r.usage.completion_tokens == pieces(EM_REPLY)
    assert r.usage.prompt_tokens == pieces(prompt)
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


def test_em_chat_streams_the_same_reply(client):
    stream = client.chat.completions.create(model="mara", messages=[{"role": "user", "content": "hi"}],
                                            stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == EM_REPLY
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == pieces(EM_REPLY)


def test_em_n_gives_n_choices_and_request_settings_reach_the_engine(client, engines, monkeypatch):
    seen = []
    backend = engines[f"fake:{EM_REPLY}"].backend
    original = backend.complete

    def spy(prompt, sampling):
        seen.append(sampling)
        return original(prompt, sampling)

    monkeypatch.setattr(backend, "complete", spy)
    r = client.chat.completions.create(model="mara", messages=[{"role": "user", "content": "hi"}], n=3,
                                       temperature=0.25, seed=40, max_tokens=3, stop=["friend"])
    assert [c.index for c in r.choices] == [0, 1, 2]
    assert {s.temperature for s in seen} == {0.25}
    assert [s.seed for s in seen] == [40, 41, 42]
    assert all("friend" in s.stop for s in seen)
    assert all(c.message.content == "Hi there," for c in r.choices)  # the stop cut it, the em trimmed it


def test_em_completion_reads_the_prompt_as_a_transcript(client, engines):
    r = client.completions.create(model="mara", prompt="<bob> is the fire lit?\n<ann> it is")
    assert r.object == "text_completion" and r.choices[0].text == EM_REPLY
    prompt = engines[f"fake:{EM_REPLY}"].backend.prompts[-1]
    assert prompt.endswith("<bob> is the fire lit?\n<ann> it is\n<mara>")


@pytest.mark.parametrize("stream", [False, True])
def test_thoughts_never_leave_the_em(client, monkeypatch, stream):
    from simulacra.agents import converse as conversing

    async def thinking(em, history, engine, **kw):
        return Reply([Message("mara", "SECRET PLAN to poison bob", kind="thought"),
                      Message("mara", "Have a drink, Bob."),
                      Message("mara", "pours a mug", kind="action")], prompt=None, usage={"prompt_tokens": 3})

    monkeypatch.setattr(conversing, "converse", thinking)
    kwargs = dict(model="mara", messages=[{"role": "user", "content": "hi", "name": "bob"}])
    if stream:
        text = "".join(c.choices[0].delta.content or "" for c in client.chat.completions.create(**kwargs, stream=True)
                       if c.choices)
    else:
        text = client.chat.completions.create(**kwargs).choices[0].message.content
    assert text == "Have a drink, Bob.\n* mara pours a mug"
    assert "SECRET" not in text
    r = httpx.post(f"{client.base_url}completions", headers={"Authorization": f"Bearer {KEY}"},
                   json={"model": "mara", "prompt": "<bob> hi", "stream": stream})
    assert "SECRET" not in r.text and "poison" not in r.text


def test_an_em_whose_drafts_are_all_muffled_says_content_filter(client, monkeypatch):
    from simulacra.agents import converse as conversing

    async def muffled(em, history, engine, **kw):
        return Reply([], prompt=None, rejected=[("http://spam", "contains a URL")])

    monkeypatch.setattr(conversing, "converse", muffled)
    r = client.chat.completions.create(model="mara", messages=[{"role": "user", "content": "hi"}])
    assert r.choices[0].finish_reason == "content_filter" and r.choices[0].message.content == ""


# --- raw models ---

def test_raw_chat_uses_the_engines_chat(client, engines):
    r = client.chat.completions.create(model=FAKE, messages=[{"role": "user", "content": "hi"}])
    assert r.choices[0].message.content == FAKE_REPLY
    assert engines[FAKE].backend.prompts[-1] == "user: hi"  # FakeBackend.chat's rendering: chat() was used
    assert r.usage.completion_tokens == pieces(FAKE_REPLY)


def test_raw_chat_stream_with_n_stop_and_usage(client):
    chunks = list(client.chat.completions.create(model=FAKE, messages=[{"role": "user", "content": "hi"}], n=2,
                                                 stop="my", stream=True, stream_options={"include_usage": True}))
    texts = {0: "", 1: ""}
    for c in chunks:
        for choice in c.choices:
            texts[choice.index] += choice.delta.content or ""
    assert texts == {0: "Hello there, ", 1: "Hello there, "}
    assert chunks[-1].usage.completion_tokens == 2 * pieces("Hello there, my")  # generated through the stop
    assert chunks[-1].usage.prompt_tokens == 1  # once, though two samples read it


def test_max_tokens_cuts_with_finish_reason_length(client):
    r = client.completions.create(model=FAKE, prompt="Say:", max_tokens=2)
    assert r.choices[0].text == "Hello there,"
    assert r.choices[0].finish_reason == "length" and r.usage.completion_tokens == 2
    r = client.chat.completions.create(model=FAKE, messages=[{"role": "user", "content": "x"}],
                                       max_completion_tokens=1)
    assert r.choices[0].message.content == "Hello" and r.choices[0].finish_reason == "length"


def test_raw_completion_stream_batch_and_echo(client):
    chunks = list(client.completions.create(model=FAKE, prompt=["A:", "B:"], echo=True, stream=True))
    texts: dict[int, str] = {}
    for c in chunks:
        texts[c.choices[0].index] = texts.get(c.choices[0].index, "") + c.choices[0].text
    assert texts == {0: "A:" + FAKE_REPLY, 1: "B:" + FAKE_REPLY}
    assert [c.choices[0].finish_reason for c in chunks if c.choices[0].finish_reason] == ["stop", "stop"]


def test_chat_on_a_model_that_cannot_chat_goes_through_a_transcript(client, engines):
    r = client.chat.completions.create(model="nochat", messages=[{"role": "system", "content": "Be brief."},
                                                                  {"role": "user", "content": "hi"}])
    assert engines["nochat"].backend.prompts[-1] == "-!- Be brief.\n<user> hi\n<assistant>"
    assert r.choices[0].message.content == "Sure thing."  # the user's next turn was cut off


def test_logprobs_in_both_shapes(client):
    r = client.chat.completions.create(model="logprobs", messages=[{"role": "user", "content": "x"}],
                                       logprobs=True, top_logprobs=2)
    content = r.choices[0].logprobs.content
    assert [t.token for t in content] == ["alpha", " beta", " gamma"]
    assert content[0].logprob == -0.5 and [a.token for a in content[0].top_logprobs] == ["alpha", "x"]
    assert content[1].bytes == list(b" beta")
    r = client.completions.create(model="logprobs", prompt="x", logprobs=1)
    lp = r.choices[0].logprobs
    assert lp.tokens == ["alpha", " beta", " gamma"] and lp.token_logprobs == [-0.5] * 3
    assert lp.text_offset == [0, 5, 10] and lp.top_logprobs[0] == {"alpha": -0.5}
    stream = client.completions.create(model="logprobs", prompt="x", logprobs=0, stream=True)
    assert [c.choices[0].logprobs.tokens for c in stream if c.choices[0].text] == [["alpha"], [" beta"], [" gamma"]]


def test_logprobs_from_an_engine_without_them_is_a_400(client):
    with pytest.raises(openai.BadRequestError, match="does not give logprobs"):
        client.completions.create(model=FAKE, prompt="x", logprobs=2)
    with pytest.raises(openai.BadRequestError, match="does not give logprobs"):
        client.chat.completions.create(model="mara", messages=[{"role": "user", "content": "x"}], logprobs=True)


def test_tool_calls_come_back_in_openais_shape(client, monkeypatch, engines):
    client.chat.completions.create(model=FAKE, messages=[{"role": "user", "content": "warm up"}])
    monkeypatch.setattr(engines[FAKE].backend, "replies", ['{"tool": "weather", "arguments": {"city": "Oslo"}}'])
    tools = [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}]
    r = client.chat.completions.create(model=FAKE, messages=[{"role": "user", "content": "weather?"}], tools=tools)
    call = r.choices[0].message.tool_calls[0]
    assert r.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "weather" and call.function.arguments == '{"city": "Oslo"}'
    chunks = list(client.chat.completions.create(model=FAKE, messages=[{"role": "user", "content": "w?"}],
                                                 tools=tools, stream=True))
    calls = [tc for c in chunks for tc in (c.choices[0].delta.tool_calls or [])]
    assert [(tc.index, tc.function.name) for tc in calls] == [(0, "weather")]


def test_an_engine_failing_mid_stream_sends_an_error_event_then_done(client, base_url):
    with pytest.raises(openai.APIError, match="fell over"):
        for _ in client.chat.completions.create(model="broken", messages=[{"role": "user", "content": "x"}],
                                                stream=True):
            pass
    with httpx.stream("POST", f"{base_url}/completions", headers={"Authorization": f"Bearer {KEY}"},
                      json={"model": "broken", "prompt": "x", "stream": True}) as r:
        events = [line for line in r.iter_lines() if line]
    assert r.status_code == 200
    assert '"text":"Half"' in events[0]
    assert '"error"' in events[-2] and "fell over" in events[-2]
    assert events[-1] == "data: [DONE]"
    with pytest.raises(openai.APIStatusError) as failed:  # not streaming: the engine's status
        client.completions.create(model="broken", prompt="x")
    assert failed.value.status_code == 502 and "fell over" in failed.value.body["message"]
