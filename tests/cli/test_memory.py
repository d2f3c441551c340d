"""`simulacra memory`: commands through typer's runner, error paths through the real entry point."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

import simulacra.cli.memory  # noqa: F401  (registers the commands)
from simulacra.cli.app import app
from simulacra.engine.embed import HashEmbedder
from simulacra.errors import InputError
from simulacra.memory import MemoryStore, memory_path

runner = CliRunner()


def run(*args):
    result = runner.invoke(app, ["memory", *map(str, args)])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture
def em(tmp_path):
    folder = tmp_path / "mara"
    folder.mkdir()
    return folder


def test_add_list_search_forget(em):
    assert "added memory 1" in run("--embedder", "hash", em, "add", "Mara runs the tavern by the river")
    run(em, "add", "The bridge over the river collapsed!", "--kind", "observation", "--importance", "9")
    run(em, "add", "Mara and the bridge", "--kind", "reflection", "--cite", 1, "--cite", 2)
    listed = run(em, "list")
    assert "Mara runs the tavern" in listed and "reflection" in listed and "1,2" in listed
    assert "bridge" not in run(em, "list", "--kind", "note")
    # the store remembers its embedder, so later commands need no --embedder
    hits = run(em, "search", "who runs the tavern", "-k", "1", "--recency", "0", "--importance", "0")
    assert "Mara runs the tavern" in hits and "collapsed" not in hits
    assert "forgot memory 2" in run(em, "forget", 2)
    with MemoryStore(memory_path(em), HashEmbedder()) as store:
        assert [m.id for m in store.all()] == [1, 3] and store.get(3).cites == (1,)


def test_search_does_not_touch_unless_asked(em):
    run("--embedder", "hash", em, "add", "the well went dry")
    before = json.loads(run(em, "export"))[0]["last_accessed"]
    run(em, "search", "well")
    assert json.loads(run(em, "export"))[0]["last_accessed"] == before
    run(em, "search", "well", "--touch")
    assert json.loads(run(em, "export"))[0]["last_accessed"] > before


def test_export_then_import_into_another_em(em, tmp_path):
    run("--embedder", "hash", em, "add", "first")
    run(em, "add", "second", "--cite", 1)
    exported = run(em, "export", "--embeddings")
    records = json.loads(exported)
    assert [r["text"] for r in records] == ["first", "second"] and records[1]["cites"] == [1]
    dump = tmp_path / "dump.json"
    dump.write_text(exported, encoding="utf-8")
    other = tmp_path / "klaus"
    other.mkdir()
    assert "imported 2 memories" in run("--embedder", "hash", other, "import", dump)
    assert json.loads(run(other, "export")) == json.loads(run(em, "export"))


def test_reading_commands_on_an_em_without_memory_create_nothing(em):
    assert "no memories" in run(em, "list")
    assert json.loads(run(em, "export")) == []
    assert not (em / "state").exists()


def cli(*args):
    # The real entry point (one-line errors, exit 1), limited to this module's commands.
    code = ("import sys, simulacra.cli as c; c.COMMAND_MODULES = ['memory']; "
            "sys.argv[0] = 'simulacra'; c.main()")
    return subprocess.run([sys.executable, "-c", code, "memory", *map(str, args)],
                          capture_output=True, text=True)


@pytest.mark.parametrize("args, error, message", [
    (["add", "x", "--importance", "11"], InputError, "1 to 10"),
    (["add", "x", "--cite", "42"], InputError, "cannot cite"),
    (["add", "x", "--kind", "dream"], InputError, "unknown memory kind"),
    (["import", "missing.json"], InputError, "cannot read memories"),
    (["search", "x", "--kind", "dream"], InputError, "unknown memory kind"),
])
def test_bad_input_raises_a_simulacra_error(em, args, error, message):
    run("--embedder", "hash", em, "add", "something")
    result = runner.invoke(app, ["memory", str(em), *args])
    assert isinstance(result.exception, error) and message in str(result.exception)
    assert len(json.loads(run(em, "export"))) == 1


def cli(*args):
    # The real entry point (one-line errors, exit 1), limited to this module's commands.
    code = ("import sys, simulacra.cli as c; c.COMMAND_MODULES = ['memory']; "
            "sys.argv[0] = 'simulacra'; c.main()")
    return subprocess.run([sys.executable, "-c", code, "memory", *map(str, args)],
                          capture_output=True, text=True)


def test_errors_print_one_line_and_exit_1(tmp_path, em):
    for args, message in [((tmp_path / "nobody", "list"), "does not exist"),
                          (("--embedder", "glove", em, "add", "x"), "unknown embedder"),
                          ((em, "forget", 7), "no memory 7")]:
        result = cli(*args)
        assert result.returncode == 1 and message in result.stderr
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
