"""Next-speaker policies: round-robin, mention, weighted random, ask the model."""
from __future__ import annotations

import random
from collections import Counter

import pytest

from simulacra.engine.base import Engine
from simulacra.engine.fake import FakeBackend
from simulacra.errors import ConfigError
from simulacra.types import Message
from simulacra.world import AskModel, Mention, Participant, RoundRobin, Scene, Weighted, make_policy
from simulacra.world.turns import match_name, mentioned, parse_weights, speaker_prompt


def scene_of(*names, messages=()):
    return Scene([Participant(n) for n in names], list(messages))


async def picks(policy, scene, n, seed=0):
    rng, out = random.Random(seed), []
    for _ in range(n):
        name = await policy.next_speaker(scene, rng)
        scene.last_turn = name
        out.append(name)
    return out


async def test_round_robin_cycles_in_join_order_and_skips_who_left():
    scene = scene_of("ann", "bob", "cy")
    assert await picks(RoundRobin(), scene, 4) == ["ann", "bob", "cy", "ann"]
    scene.leave("bob")
    assert await picks(RoundRobin(), scene, 3) == ["cy", "ann", "cy"]


async def test_mention_picks_the_first_name_in_the_last_message():
    scene = scene_of("ann", "bob", "Cy", messages=[Message("ann", "what do you think, cy? and bob?")])
    scene.last_turn = "ann"
    assert await Mention().next_speaker(scene, random.Random(0)) == "Cy"
    scene.post(Message("bob", "@ann, over to you"))
    scene.last_turn = "bob"
    assert await Mention().next_speaker(scene, random.Random(0)) == "ann"


async def test_mention_ignores_the_author_and_the_last_turn_and_else_falls_back():
    scene = scene_of("ann", "bob", "cy", messages=[Message("ann", "I, ann, have nothing to add")])
    scene.last_turn = "ann"
    assert await Mention().next_speaker(scene, random.Random(0)) == "bob"  # round-robin after ann
    # bob was named but passed: the floor moves on instead of coming back to bob forever
    scene.post(Message("cy", "bob?"))
    scene.last_turn = "bob"
    assert await Mention().next_speaker(scene, random.Random(0)) == "cy"
    assert mentioned("annabel and bobby", ["ann", "bob"]) == []
    assert mentioned("Hi Ann Marie and Ann", ["Ann", "Ann Marie"]) == ["Ann Marie", "Ann"]


async def test_weighted_random_follows_talkativeness():
    scene = scene_of("ann", "bob", "cy", "dee")
    policy = Weighted({"ann": 3, "bob": 1, "cy": 0})
    counts = Counter()
    rng = random.Random(7)
    for _ in range(3000):
        scene.last_turn = "cy"  # cy has weight 0 anyway: every draw is from ann, bob and dee
        counts[await policy.next_speaker(scene, rng)] += 1
    assert counts["cy"] == 0
    assert 0.55 < counts["ann"] / 3000 < 0.65 and 0.15 < counts["bob"] / 3000 < 0.25


async def test_weighted_random_is_seeded_and_never_repeats_a_speaker():
    scene = scene_of("ann", "bob", "cy")
    first = await picks(Weighted(), scene, 30, seed=3)
    scene.last_turn = None
    assert await picks(Weighted(), scene, 30, seed=3) == first
    assert all(a != b for a, b in zip(first, first[1:]))
    assert set(first) == {"ann", "bob", "cy"}


def test_weights_parse_and_reject_bad_input():
    assert parse_weights(["ann=0.5,bob=2", "cy=0"]) == {"ann": 0.5, "bob": 2.0, "cy": 0.0}
    for bad in ("ann", "=2", "ann=lots"):
        with pytest.raises(ConfigError, match="NAME=NUMBER"):
            parse_weights([bad])
    with pytest.raises(ConfigError, match="0 or more"):
        Weighted({"ann": -1})
    with pytest.raises(ConfigError, match="unknown turn policy 'loudest'"):
        make_policy("loudest")


async def test_model_policy_reads_the_predicted_name_from_the_transcript_prompt():
    prompts = []

    def script(prompt):
        prompts.append(prompt)
        return "BOB> I have something to say" if len(prompts) > 1 else "nobody here> hm"

    scene = scene_of("ann", "bob", "cy", messages=[Message("ann", "hello"), Message("cy", "hi")])
    policy = AskModel(Engine(FakeBackend(script)))
    assert await policy.next_speaker(scene, random.Random(0)) == "bob"
    assert prompts[0] == "<ann> hello\n<cy> hi\n<"  # the transcript, a newline, then "<"
    assert len(prompts) == 2  # a guess naming nobody present is retried


async def test_model_policy_falls_back_when_the_model_names_nobody_present():
    scene = scene_of("ann", "bob", messages=[Message("ann", "hello")])
    scene.leave("bob")
    scene.join(Participant("dee"))
    scene.last_turn = "ann"
    policy = AskModel(Engine(FakeBackend(["bob> I left already"])), tries=2)
    assert await policy.next_speaker(scene, random.Random(0)) == "dee"  # round-robin after ann


def test_names_match_exactly_then_by_case_then_by_unique_prefix():
    names = ["Ann", "Annabel", "bob"]
    assert match_name(" Ann", names) == "Ann"
    assert match_name("annabel", names) == "Annabel"
    assert match_name("@bo", names) == "bob"
    assert match_name("An", names) is None  # ambiguous
    assert match_name("", names) is None


def test_speaker_prompt_keeps_the_newest_messages_that_fit():
    messages = [Message("ann", f"message number {i}") for i in range(50)]
    prompt = speaker_prompt(messages, lambda text: len(text.split()), budget=41)
    assert prompt.endswith("<ann> message number 49\n<")
    assert prompt.startswith("<ann> message number 40\n")  # 10 lines of 4 "tokens", plus the "<"
