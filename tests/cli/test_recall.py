"""The issue's test, for real: a fact told in one `simulacra chat` process is recalled by a new
process a day later, and it is the memory faculty that put it into the prompt."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

FACT = "My sister's name is Ottoline."


def make_em(root, memory: bool, representation="hash", thinking=None):
    folder = root / "mara"
    folder.mkdir()
    config = {"continuation_model": "fake:Noted.", "representation_model": representation,
              "memory": {"enabled": memory},
              "ensembles": [{"faculty": "notes", "text": "Mara keeps the harbour."}, {"faculty": "memory"}]}
    if thinking:
        config["thinking"] = thinking
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    return folder


def simulacra(args, cwd, stdin="", **env):
    full = {**os.environ, "SIMULACRA_HOME": str(cwd / "home"), **env}
    full.pop("SIMULACRA_CLOCK_OFFSET", None)
    full.update(env)
    return subprocess.run([sys.executable, "-m", "simulacra", *args], input=stdin, capture_output=True,
                          text=True, cwd=cwd, env=full, timeout=300)


def tell_then_ask(tmp_path, memory: bool, representation="hash"):
    em = make_em(tmp_path, memory, representation)
    told = simulacra(["chat", str(em)], tmp_path, stdin=FACT + "\n")
    assert told.returncode == 0, told.stderr
    assert "<mara> Noted." in told.stdout
    history = tmp_path / "ask.txt"
    history.write_text("<user> What is my sister called?\n")
    asked = simulacra(["prompt", str(em), "--history", str(history)], tmp_path,
                      SIMULACRA_CLOCK_OFFSET=str(24 * 3600))
    assert asked.returncode == 0, asked.stderr
    return em, asked.stdout


def test_a_fact_told_yesterday_is_in_todays_prompt(tmp_path):
    em, prompt = tell_then_ask(tmp_path, memory=True)
    assert "What mara remembers:" in prompt
    assert f"- (1 day ago) user said: {FACT}" in prompt
    assert prompt.rstrip().endswith("<user> What is my sister called?\n<mara>")


def test_without_memory_the_fact_is_gone(tmp_path):
    em, prompt = tell_then_ask(tmp_path, memory=False)
    assert "Ottoline" not in prompt
    assert not (em / "state" / "memory.db").exists()


@pytest.mark.slow
def test_recall_with_minilm_embeddings(tmp_path):
    pytest.importorskip("sentence_transformers")
    _, prompt = tell_then_ask(tmp_path, memory=True, representation="minilm")
    assert f"- (1 day ago) user said: {FACT}" in prompt


@pytest.mark.parametrize("show", [True, False])
def test_the_repl_shows_thoughts_only_when_the_em_allows(tmp_path, show):
    em = make_em(tmp_path, memory=False, thinking={"enabled": True, "show": show})
    saved = tmp_path / "log.txt"
    run = simulacra(["chat", str(em)], tmp_path, stdin=f"{FACT}\n/save {saved}\n")
    assert run.returncode == 0, run.stderr
    assert ("* mara thinks: Noted." in run.stdout) is show
    assert "<mara> Noted." in run.stdout
    assert saved.read_text() == f"<user> {FACT}\n<mara> Noted.\n"  # a saved log never holds thoughts


def test_a_bad_clock_offset_is_one_line(tmp_path):
    em = make_em(tmp_path, memory=True)
    (tmp_path / "ask.txt").write_text("<user> hi\n")
    from simulacra.engine.embed import HashEmbedder
    from simulacra.memory import MemoryStore

    with MemoryStore.for_em(em, HashEmbedder()) as store:
        store.add(FACT)
    run = simulacra(["prompt", str(em), "--history", str(tmp_path / "ask.txt")], tmp_path,
                    SIMULACRA_CLOCK_OFFSET="tomorrow")
    assert run.returncode == 1
    assert "SIMULACRA_CLOCK_OFFSET" in run.stderr and "Traceback" not in run.stderr
