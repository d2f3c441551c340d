"""Scratchpad: the API, hand edits, and atomic writes under failures and SIGKILL."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
import yaml

from simulacra.errors import InputError
from simulacra.memory import Scratchpad


@pytest.fixture
def pad(tmp_path):
    return Scratchpad.for_em(tmp_path)


def test_remember_note_forget_render(pad, tmp_path):
    assert pad.render() == "" and not pad.path.exists()
    pad.remember("Mara", "runs the tavern")
    pad.remember("the well", "went dry\non Tuesday")  # kept on one line
    pad.note("bring bread tomorrow")
    pad.remember("Mara", "runs the tavern; owes me two coins")
    assert pad.render() == ("Mara: runs the tavern; owes me two coins\nthe well: went dry on Tuesday\n"
                            "- bring bread tomorrow")
    assert pad.forget("the well") and pad.forget("bring bread tomorrow") and not pad.forget("nobody")
    again = Scratchpad(tmp_path / "state" / "scratchpad.yaml")
    assert again.facts == {"Mara": "runs the tavern; owes me two coins"} and again.notes == []
    with pytest.raises(InputError):
        pad.remember("", "x")


def test_hand_edits_are_kept_and_bad_yaml_is_never_overwritten(pad):
    pad.note("first")
    pad.path.write_text("facts:\n  Klaus: 12\nnotes:\n- first\n- added by hand\n", encoding="utf-8")
    pad.note("second")
    assert pad.facts == {"Klaus": "12"} and pad.notes == ["first", "added by hand", "second"]
    broken = "facts: [unclosed\n"
    pad.path.write_text(broken, encoding="utf-8")
    with pytest.raises(InputError, match="not valid YAML at line"):
        pad.note("third")
    assert pad.path.read_text(encoding="utf-8") == broken


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_a_failed_write_leaves_the_old_file_and_no_temp_files(pad, monkeypatch, failing):
    pad.remember("Mara", "runs the tavern")
    before = pad.path.read_bytes()

    def boom(*args):
        raise OSError("disk on fire")

    monkeypatch.setattr(os, failing, boom)
    with pytest.raises(OSError):
        pad.remember("Mara", "x" * 100_000)
    monkeypatch.undo()
    assert pad.path.read_bytes() == before
    assert sorted(p.name for p in pad.path.parent.iterdir()) == ["scratchpad.yaml"]


def test_a_crash_at_any_point_of_a_write_leaves_the_old_or_the_new_file(pad):
    """Fork, and kill the child at its 1st, 2nd, 3rd... C call inside the write, until one survives."""
    from simulacra.memory import scratchpad

    pad.remember("Mara", "runs the tavern")
    pad.note("old note")
    old = pad.path.read_text(encoding="utf-8")
    new_facts = {"Mara": "runs the tavern", "Klaus": "x" * 5_000}
    for n in range(1, 10_000):
        pid = os.fork()
        if pid == 0:  # the child: write, dying at the n-th C call (open, write, fsync, rename...)
            calls = 0

            def hook(frame, event, arg):
                nonlocal calls
                if event == "c_call":
                    calls += 1
                    if calls == n:
                        os.kill(os.getpid(), signal.SIGKILL)

            def dying_write(path, text, _real=scratchpad.atomic_write):
                sys.setprofile(hook)
                _real(path, text)
                sys.setprofile(None)

            scratchpad.atomic_write = dying_write
            pad.remember("Klaus", "x" * 5_000)
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        text = pad.path.read_text(encoding="utf-8")
        if os.WIFEXITED(status):  # survived: no C call left to die at
            assert pad.facts == new_facts
            break
        assert os.WTERMSIG(status) == signal.SIGKILL
        assert text == old or (pad.facts == new_facts and pad.notes == ["old note"]), f"torn at call {n}"
        pad.path.write_text(old, encoding="utf-8")
        for leftover in pad.path.parent.glob(".scratchpad.yaml.*.tmp"):
            leftover.unlink()  # a killed writer may leave its temporary file, never a torn target
    assert n > 5  # the write really was interrupted at several points
