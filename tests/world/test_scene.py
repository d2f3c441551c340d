"""Scenes: one shared transcript, presence, no em speaking for another, the IRC log round trip."""
from __future__ import annotations

import pytest

from simulacra.engine.base import Engine
from simulacra.engine.fake import FakeBackend
from simulacra.errors import ConfigError, InputError
from simulacra.types import Message
from simulacra.world import Engines, Participant, RoundRobin, Scene, read_log, run_scene, take_turn
from simulacra.world.scene import opening_messages, public

QUIET = {"mufflers": []}


def em_with(make_em, tmp_path, name, reply):
    """An em and a scripted engine; ``reply`` is a string or prompt -> string."""
    em = make_em(tmp_path, QUIET, name=name)
    backend = FakeBackend(reply if callable(reply) else [reply])
    return Participant(name, em, Engine(backend)), backend


async def test_ems_take_turns_and_none_speaks_for_another(make_em, tmp_path):
    # each fake model tries to go on and write the other em's next line
    ann, _ = em_with(make_em, tmp_path, "ann", " Hello bob, how are you?\n<bob> I am bob and I say so")
    bob, _ = em_with(make_em, tmp_path, "bob", " Fine thanks ann.\n<ann> speaking for ann here\n* ann nods")
    scene = Scene([ann, bob])
    await run_scene(scene, RoundRobin(), 8, seed=1)
    assert scene.turns == 8
    assert [m.author for m in scene.transcript] == ["ann", "bob"] * 4
    assert {m.content for m in scene.transcript if m.author == "ann"} == {"Hello bob, how are you?"}
    assert {m.content for m in scene.transcript if m.author == "bob"} == {"Fine thanks ann."}


async def test_a_reply_written_entirely_as_someone_else_is_dropped(make_em, tmp_path):
    ann, _ = em_with(make_em, tmp_path, "ann", " hi")
    bob, _ = em_with(make_em, tmp_path, "bob", "\n<ann> words put in ann's mouth")
    scene = Scene([ann, bob], [Message("ann", "hello")])
    kept = await take_turn(scene, "bob")
    assert kept == [] and [m.author for m in scene.transcript] == ["ann"]
    assert scene.last_turn == "bob" and scene.turns == 1


async def test_log_parses_back_to_the_same_transcript(make_em, tmp_path):
    ann, _ = em_with(make_em, tmp_path, "ann", " first line\nsecond line of the same message\n<ann> a second message")
    bob, _ = em_with(make_em, tmp_path, "bob", " short")
    scene = Scene([ann, bob], opening_messages("The tavern is quiet tonight."))
    scene.post(Message("ann", "a private plan", kind="thought"))
    await run_scene(scene, RoundRobin(), 4)
    scene.post(Message("bob", "waves", kind="action"))
    expected = [(m.author, m.content, m.kind) for m in public(scene.transcript)]
    assert ("ann", "first line\nsecond line of the same message", "message") in expected
    assert all(kind != "thought" for _, _, kind in expected)
    assert [(m.author, m.content, m.kind) for m in read_log(scene.log())] == expected


async def test_an_em_sees_only_what_was_said_while_it_was_present(make_em, tmp_path):
    ann, _ = em_with(make_em, tmp_path, "ann", " hi")
    carol, carol_model = em_with(make_em, tmp_path, "carol", " hello all")
    scene = Scene([ann], [Message("ann", "the secret word is swordfish")])
    scene.post(Message("ann", "my own musing", kind="thought"))
    scene.join(carol, announce=True)
    scene.post(Message("ann", "welcome carol"))
    assert [m.content for m in scene.seen_by("carol")] == ["welcome carol"]
    assert [m.content for m in scene.seen_by("ann")] == ["the secret word is swordfish", "my own musing",
                                                           "carol joins", "welcome carol"]
    await take_turn(scene, "carol")
    assert "welcome carol" in carol_model.prompts[0] and "swordfish" not in carol_model.prompts[0]

    scene.leave("carol", announce=True)
    scene.post(Message("ann", "now she is gone: the word is marlin"))
    scene.join(carol)
    scene.post(Message("ann", "back again"))
    seen = [m.content for m in scene.seen_by("carol")]
    assert seen == ["welcome carol", "hello all", "back again"]
    assert scene.present == ["ann", "carol"]


async def test_people_pass_act_and_leave(make_em, tmp_path):
    ann, _ = em_with(make_em, tmp_path, "ann", " your move")
    lines = iter(["", "/me shrugs", None])

    async def ask(name):
        assert name == "you"
        return next(lines)

    scene = Scene([ann, Participant("you")])
    await run_scene(scene, RoundRobin(), 10, ask=ask)
    said = [(m.author, m.kind, m.content) for m in scene.transcript]
    assert said[:3] == [("ann", "message", "your move"), ("ann", "message", "your move"),
                        ("you", "action", "shrugs")]
    assert ("", "observation", "you leaves") not in said and (None, "observation", "you leaves") in said
    # after leaving, only ann is picked: 3 turns of yours, 7 of ann's
    assert scene.present == ["ann"] and scene.turns == 10
    assert sum(a == "ann" for a, _, _ in said) == 7


def test_duplicate_and_unwritable_names_are_one_line_errors(make_em, tmp_path):
    with pytest.raises(ConfigError, match="two participants are named 'ann'"):
        Scene([Participant("ann"), Participant("ann")])
    with pytest.raises(InputError, match="cannot be written in an IRC log"):
        Scene([Participant("a<b>")])


def test_opening_is_irc_lines_or_narration():
    assert opening_messages("<bob> hi there\n<ann> hello") == [Message("bob", "hi there"), Message("ann", "hello")]
    assert opening_messages("Rain on the roof.") == [Message(None, "Rain on the roof.", kind="observation")]


def test_ems_on_the_same_model_share_one_engine():
    loaded = []

    def load(spec):
        loaded.append(spec)
        return object()

    engines = Engines(load)
    assert engines.get("fake:a") is engines.get("fake:a")
    assert engines.get("fake:b") is not engines.get("fake:a")
    assert loaded == ["fake:a", "fake:b"] and len(engines) == 2


async def test_a_thinking_ems_thoughts_stay_its_own(make_em, tmp_path):
    def ann_model(prompt):
        return " I must hide the treasure" if prompt.endswith("(thinks)") else " Hello bob."

    em = make_em(tmp_path, {**QUIET, "thinking": {"enabled": True}}, name="ann")
    ann_backend = FakeBackend(ann_model)
    ann = Participant("ann", em, Engine(ann_backend))
    bob, bob_backend = em_with(make_em, tmp_path, "bob", " Hi ann.")
    scene = Scene([ann, bob])
    await run_scene(scene, RoundRobin(), 4)
    kinds = [(m.author, m.kind) for m in scene.transcript]
    assert kinds == [("ann", "thought"), ("ann", "message"), ("bob", "message")] * 2
    assert not any("treasure" in p for p in bob_backend.prompts)
    assert "treasure" in ann_backend.prompts[-1]  # ann's later turns recall her own thought
    assert "treasure" not in scene.log() and all(m.kind != "thought" for m in read_log(scene.log()))
