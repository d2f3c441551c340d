"""`simulacra agent`: the em's own tools, its allowlist, and a clear stop."""
import subprocess
import sys

SCRIPT = 'fake:Thought: compute.\nAction: calculator {"expression": "6*7"}'


def run(*args, tmp_path):
    return subprocess.run([sys.executable, "-m", "simulacra", "agent", *args], capture_output=True, text=True,
                          timeout=120, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})


def test_agent_uses_allowed_tools_and_stops_a_repeated_call(make_em, tmp_path):
    em = make_em(tmp_path, {"tools": {"allow": ["calculator"]}})
    result = run(str(em.folder), "what is 6*7?", "--model", SCRIPT, tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Observation: 42" in result.stderr
    assert "already called calculator" in result.stderr  # the loop guard, not an endless loop
    assert "[loop;" in result.stderr


def test_agent_refuses_tools_outside_the_allowlist(make_em, tmp_path):
    em = make_em(tmp_path, {"tools": {"allow": ["roll_dice"]}})
    result = run(str(em.folder), "what is 6*7?", "--model", SCRIPT, tmp_path=tmp_path)
    assert "Observation: 42" not in result.stderr
    assert "not allowed" in result.stderr


def test_unknown_loop_is_one_line(make_em, tmp_path):
    em = make_em(tmp_path)
    result = run(str(em.folder), "x", "--loop", "magic", tmp_path=tmp_path)
    assert result.returncode == 1 and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
