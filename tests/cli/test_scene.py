"""`simulacra scene`: ends by itself, every em speaks only for itself, the log saves and parses."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

import simulacra.cli.scene  # noqa: F401  (registers the command)
from simulacra.cli.app import app
from simulacra.world import read_log

runner = CliRunner()


def tiny_em(root: Path, name: str, model: str, **config) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(yaml.safe_dump({"continuation_model": model, "mufflers": [], **config}))
    return folder


@pytest.fixture
def two_ems(tmp_path):
    # each scripted model tries to carry on as the other em too
    ann = tiny_em(tmp_path, "ann", "fake: Hello bob, what news?\n<bob> none, says the fake bob")
    bob = tiny_em(tmp_path, "bob", "fake: The river rose again.\n<ann> how awful, says the fake ann")
    return ann, bob


def scene(*args, input=None):
    result = runner.invoke(app, ["scene", *map(str, args)], input=input)
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def test_scene_ends_by_itself_with_both_ems_speaking_only_for_themselves(two_ems, tmp_path):
    log = tmp_path / "out" / "scene.log"
    result = scene(*two_ems, "--turns", "8", "--save", log)
    saved = log.read_text()
    assert result.stdout == saved  # the terminal transcript is exactly the saved log
    messages = read_log(saved)
    assert [m.author for m in messages] == ["ann", "bob"] * 4
    assert {m.content for m in messages if m.author == "ann"} == {"Hello bob, what news?"}
    assert {m.content for m in messages if m.author == "bob"} == {"The river rose again."}
    assert "scene over after 8 turns" in result.stderr


def test_opening_and_a_person_typing_turns(two_ems, tmp_path):
    result = scene(*two_ems, "--human", "me", "--turns", "6", "--opening", "A storm outside.",
                   input="hi all\n\n")
    messages = read_log(result.stdout)
    assert (messages[0].author, messages[0].kind) == (None, "observation")
    assert [m.author for m in messages[1:]] == ["ann", "bob", "me", "ann", "bob"]  # the second "me" passed
    assert messages[3].content == "hi all"


def test_model_policy_lets_the_model_pick_the_speaker(two_ems):
    result = scene(*two_ems, "--turns", "3", "--policy", "model", "--policy-model", "fake:bob> I will")
    assert [m.author for m in read_log(result.stdout)] == ["bob", "bob", "bob"]


def test_random_policy_with_a_silent_em(two_ems, tmp_path):
    ann, bob = two_ems
    carol = tiny_em(tmp_path, "carol", "fake: I only listen")
    result = scene(ann, bob, carol, "--turns", "6", "--policy", "random", "--weights", "carol=0", "--seed", "4")
    authors = [m.author for m in read_log(result.stdout)]
    assert len(authors) == 6 and "carol" not in authors and {"ann", "bob"} <= set(authors)
    assert "never spoke: carol" in result.stderr


@pytest.mark.parametrize("args, error", [
    (["{ann}"], "a scene needs at least two participants"),
    (["{ann}", "{bob}", "--policy", "loudest"], "unknown turn policy 'loudest'"),
    (["{ann}", "{bob}", "--policy", "random", "--weights", "zed=2"], "--weights names zed, not in the scene"),
    (["{ann}", "{ann}"], "two participants are named 'ann'"),
    (["{ann}", "{ann}/nowhere"], "no em folder at"),
])
def test_bad_input_is_one_line_and_exit_1(two_ems, args, error):
    ann, bob = two_ems
    argv = [a.format(ann=ann, bob=bob) for a in args]
    proc = subprocess.run([sys.executable, "-m", "simulacra", "scene", *argv], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert error in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_two_real_ems_on_the_default_model(tmp_path):
    from simulacra.engine.catalogue import resolve
    from simulacra.engine.spec import DEFAULT_MODEL

    try:
        resolve(DEFAULT_MODEL)
    except Exception as e:  # noqa: BLE001
        pytest.skip(f"default model not available: {e}")
    notes = lambda text: [{"faculty": "notes", "text": text}]  # noqa: E731
    ann = tiny_em(tmp_path, "ann", "", continuation_max_tokens=24, seed=3, stop_sequences=["\n"],
                  ensembles=notes("ann is a cheerful baker who loves talking about bread."))
    bob = tiny_em(tmp_path, "bob", "", continuation_max_tokens=24, seed=5, stop_sequences=["\n"],
                  ensembles=notes("bob is a grumpy fisherman who talks about the sea."))
    log = tmp_path / "scene.log"
    proc = subprocess.run([sys.executable, "-m", "simulacra", "scene", str(ann), str(bob), "--turns", "4",
                           "--opening", "<ann> Morning, bob!", "--save", str(log), "--seed", "1"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "scene over after 4 turns" in proc.stderr
    messages = read_log(log.read_text())
    spoke = {m.author for m in messages[1:]}
    assert spoke == {"ann", "bob"}, proc.stdout


def test_thoughts_never_reach_the_transcript(tmp_path):
    ann = tiny_em(tmp_path, "ann", "fake: a secret plan", thinking={"enabled": True})
    bob = tiny_em(tmp_path, "bob", "fake: hello")
    result = scene(ann, bob, "--turns", "2")
    assert [(m.author, m.kind) for m in read_log(result.stdout)] == [("ann", "message"), ("bob", "message")]
