"""A Chapter II-style em folder loads and runs with no edits (its keys keep their meaning)."""
import subprocess
import sys

import yaml

from simulacra.ems import Em

CONFIG = """\
name: aria
emname: aria
continuation_model: meta-llama/Meta-Llama-3.1-405B
continuation_max_tokens: 60
temperature: 0.95
top_p: 0.995
frequency_penalty: 0
presence_penalty: 0
repetition_penalty: 1.4
no_repeat_ngram_size: 32
recency_window: 35
total_max_tokens: 31900
name_prefix: true
split_message: true
message_history_format: {name: irc}
stop_sequences: []
mufflers: [has_url, has_pump_fun_ca, has_img_url_token]
ensembles:
  - faculty: character
    recent_message_attention: 7
    ensemble_format:
      - {operator: prepend}
    retriever: {ranking_metric: knn}
  - faculty: history
interfaces:
  - name: discord
    reply_on_random: 53
"""


def chapter_ii_em(root):
    folder = root / "ems" / "aria"
    (folder / "aria.chr").mkdir(parents=True)
    (folder / "config.yaml").write_text(CONFIG)
    (folder / "aria.chr" / "chat.txt").write_text(
        "<aria> the garden hums at dusk\n<kit> does it?\n<aria> every evening, like a kettle\n---\n"
        "<aria> I keep bees, mostly out of stubbornness\n")
    (folder / "history.txt").write_text("<kit> hi aria\n<aria> hello, kit\n")
    return folder


def test_chapter_ii_keys_keep_their_meaning(tmp_path):
    em = Em.load(chapter_ii_em(tmp_path))
    c = em.config
    assert (c.name, c.continuation_max_tokens, c.temperature, c.top_p, c.recency_window) == ("aria", 60, 0.95, 0.995, 35)
    assert c.message_history_format == "irc" and c.total_max_tokens == 31900
    assert [f.name for f, _ in em.faculties] == ["character", "history"]
    assert em.faculties[0][1].recent_message_attention == 7
    sampling = em.sampling()
    assert sampling.repetition_penalty == 1.4 and sampling.max_tokens == 60


def test_chapter_ii_em_runs_unedited(tmp_path):
    folder = chapter_ii_em(tmp_path)
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    env = {"SIMULACRA_MODEL": "fake:x", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    check = subprocess.run([sys.executable, "-m", "simulacra", "check", str(folder)], capture_output=True, text=True,
                           env=env, timeout=120)
    assert check.returncode == 0, check.stderr
    assert "ok" in check.stdout
    reply = subprocess.run([sys.executable, "-m", "simulacra", "reply", str(folder), "--model", "fake:the bees are fine",
                            "--history", "-"], input="<kit> how are the bees?\n", capture_output=True, text=True,
                           env=env, timeout=120)
    assert reply.returncode == 0, reply.stderr
    assert reply.stdout == "<aria> the bees are fine\n"
    assert {p: p.read_bytes() for p in before} == before  # nothing in the em was rewritten
    assert yaml.safe_load((folder / "config.yaml").read_text())["continuation_model"].startswith("meta-llama")
