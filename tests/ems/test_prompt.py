"""Prompt assembly: budgets, ordering, author's notes, variables, linear counting."""
from simulacra.ems.prompt import build_prompt
from simulacra.types import Message


def words(text: str) -> int:
    return len(text.split())


def conversation(n: int) -> list[Message]:
    return [Message("user" if i % 2 else "mara", f"message number {i}") for i in range(n)]


async def test_history_is_newest_first_under_budget_and_laid_out_oldest_first(make_em, tmp_path):
    em = make_em(tmp_path, {"total_max_tokens": 100, "continuation_max_tokens": 10, "recency_window": 1000})
    prompt = await build_prompt(em, conversation(200), words, max_context=4096)
    kept = prompt.history
    assert kept[-1].content == "message number 199"
    assert [m.content for m in kept] == [f"message number {i}" for i in range(200 - len(kept), 200)]
    assert words(prompt.text) <= prompt.budget == 90
    assert words(prompt.text) > 80  # filled, not starved
    assert prompt.text.endswith("<mara>")


async def test_model_context_caps_the_budget(make_em, tmp_path):
    em = make_em(tmp_path, {"total_max_tokens": 10_000, "continuation_max_tokens": 10})
    prompt = await build_prompt(em, conversation(50), words, max_context=60)
    assert prompt.budget == 50
    assert words(prompt.text) <= 50


async def test_faculty_sections_obey_their_limits_and_never_crowd_out_the_last_messages(make_em, tmp_path):
    notes = "\n".join(f"fact {i} " + "pad " * 10 for i in range(30))
    em = make_em(tmp_path, {"total_max_tokens": 120, "continuation_max_tokens": 10, "ensembles": [
        {"faculty": "lore", "max_items": 2},
        {"faculty": "notes", "file": "notes.txt", "header": "[notes]\n"}]},
        files={"notes.txt": notes})
    prompt = await build_prompt(em, conversation(6), words, max_context=4096)
    for i in (3, 4, 5):  # the reserved recent messages survive a faculty that wants everything
        assert f"message number {i}" in prompt.text
    assert words(prompt.text) <= prompt.budget


async def test_prepend_puts_the_first_item_nearest_the_conversation(make_em, tmp_path):
    em = make_em(tmp_path, {"ensembles": [{"faculty": "history"}]},
                 files={"history.txt": "<user> first\n<mara> second\n<user> third\n"})
    prompt = await build_prompt(em, [Message("user", "now")], words, max_context=4096)
    assert prompt.text.index("first") < prompt.text.index("second") < prompt.text.index("third") < prompt.text.index("now")


async def test_authors_note_goes_depth_messages_from_the_end_and_variables_fill(make_em, tmp_path):
    em = make_em(tmp_path, {"ensembles": [{"faculty": "notes", "text": "[{name} stays in character]", "depth": 2}]})
    prompt = await build_prompt(em, conversation(6), words, max_context=4096)
    lines = prompt.text.splitlines()
    assert lines[-5:] == ["<user> message number 3", "[mara stays in character]",
                          "<mara> message number 4", "<user> message number 5", "<mara>"]


async def test_stops_are_every_other_speakers_prefix_with_no_cap(make_em, tmp_path):
    em = make_em(tmp_path)
    people = [Message(f"p{i}", "hi") for i in range(7)]
    prompt = await build_prompt(em, people, words, max_context=4096)
    for i in range(7):
        assert f"\n<p{i}>" in prompt.stops
    assert "\n<mara>" not in prompt.stops


async def test_each_message_is_counted_once(make_em, tmp_path):
    calls = []
    em = make_em(tmp_path, {"recency_window": 10_000, "total_max_tokens": 10**6})

    def count(text):
        calls.append(text)
        return words(text)

    await build_prompt(em, conversation(1000), count, max_context=10**6)
    assert len(calls) == len(set(calls)) < 1000 + 20


async def test_others_thoughts_are_hidden_and_own_thoughts_shown(make_em, tmp_path):
    em = make_em(tmp_path)
    history = [Message("bob", "bob secretly plots", kind="thought"), Message("mara", "mara muses", kind="thought"),
               Message("bob", "hello")]
    prompt = await build_prompt(em, history, words, max_context=4096)
    assert "plots" not in prompt.text
    assert "mara muses" in prompt.text
