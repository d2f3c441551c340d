"""`simulacra models list | pull | path` in a temporary $SIMULACRA_HOME."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import pytest
import yaml
from typer.testing import CliRunner

import simulacra.cli.models  # noqa: F401  (registers the commands)
from simulacra.cli.app import app

DATA = b"GGUF" + os.urandom(5000)


@pytest.fixture
def home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    src = tmp_path / "src.gguf"
    src.write_bytes(DATA)
    entry = dict(name="tiny", kind="base", size=len(DATA), licence="MIT",
                 sha256=hashlib.sha256(DATA).hexdigest(), filename="tiny.gguf",
                 source=dict(type="url", url=src.as_uri()))
    (home / "catalogue.yaml").write_text(yaml.safe_dump({"models": [entry]}))
    monkeypatch.setenv("SIMULACRA_HOME", str(home))
    monkeypatch.delenv("SIMULACRA_MODEL", raising=False)
    return home


def run(*args: str):
    return CliRunner().invoke(app, ["models", *args])


def rows(output: str) -> dict[str, list[str]]:
    return {line.split()[0]: line.split() for line in output.splitlines() if line.strip()}


def test_list_shows_catalogue_with_default_and_installed(home, monkeypatch):
    table = rows(run("list").stdout)
    assert table["smollm2-135m-instruct"][1] == "*"  # the default is marked
    assert table["tiny"][1:] == ["base", "5.0", "KB", "MIT", "no"]
    assert table["gemma3-270m"][-1] == "no"
    assert run("pull", "tiny").exit_code == 0
    assert rows(run("list").stdout)["tiny"][-1] == "yes"
    monkeypatch.setenv("SIMULACRA_MODEL", "tiny")
    assert rows(run("list").stdout)["tiny"][1] == "*"


def test_pull_prints_only_the_path_on_stdout(home):
    result = run("pull", "tiny")
    expected = home / "models" / "tiny" / "tiny.gguf"
    assert result.exit_code == 0 and result.stdout == f"{expected}\n"
    assert expected.read_bytes() == DATA
    assert run("pull", "tiny", "--verify").stdout == f"{expected}\n"


def test_path_prints_a_pulled_model(home):
    run("pull", "tiny")
    result = run("path", "tiny")
    assert result.exit_code == 0 and result.stdout == f"{home / 'models' / 'tiny' / 'tiny.gguf'}\n"


def cli(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "simulacra", "models", *args], capture_output=True,
                          text=True, env=os.environ | env, timeout=60)


@pytest.mark.parametrize("args, says", [
    (("path", "tiny"), "not pulled: run  simulacra models pull tiny"),
    (("pull", "tinny"), "did you mean tiny"),
    (("path", "gemma3"), "did you mean gemma3-270m"),
])
def test_errors_are_one_line_without_traceback(home, args, says):
    done = cli(*args, env={"SIMULACRA_HOME": str(home)})
    assert done.returncode == 1 and done.stdout == ""
    assert says in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_malformed_user_catalogue_fails_cleanly(home):
    (home / "catalogue.yaml").write_text("models: [{name: x, kind: chat, colour: red}]")
    done = cli("list", env={"SIMULACRA_HOME": str(home)})
    assert done.returncode == 1 and "catalogue.yaml" in done.stderr and "colour" in done.stderr
    assert "Traceback" not in done.stderr
