"""`simulacra ngram train|eval`: results match the library, bad input is one line and exit 1."""
from __future__ import annotations

import re
import subprocess
import sys

import pytest
from typer.testing import CliRunner

import simulacra.cli.ngram  # noqa: F401  (registers the commands)
from simulacra.cli.app import app
from simulacra.lm import ngram

CORPUS = "It was the best of times, it was the worst of times.\n" * 20
runner = CliRunner()


def invoke(*args: str, input: str | None = None):
    result = runner.invoke(app, ["ngram", *args], input=input)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture
def corpus_file(tmp_path):
    path = tmp_path / "dickens.txt"
    path.write_text(CORPUS, encoding="utf-8")
    return path


@pytest.mark.parametrize("level", ["char", "word"])
def test_train_then_eval_reports_the_models_own_figures(tmp_path, corpus_file, level):
    model_file = tmp_path / "m.ngram"
    out = invoke("train", str(corpus_file), "-o", str(model_file), "--order", "3", "--level", level)
    assert str(model_file) in out and f"{level} level" in out
    model = ngram.load(model_file)
    assert (model.order, model.level) == (3, level)

    text = "It was the age of wisdom"
    out = invoke("eval", str(model_file), text)
    bpc = float(re.search(r"bits per character: ([\d.]+)", out).group(1))
    ppl = float(re.search(r"perplexity: ([\d.]+)", out).group(1))
    assert bpc == pytest.approx(model.bits_per_char(text), abs=1e-4)
    assert ppl == pytest.approx(model.perplexity(text), rel=1e-4)

    held_out = tmp_path / "held_out.txt"
    held_out.write_text(text, encoding="utf-8")
    assert invoke("eval", str(model_file), f"@{held_out}") == out


def test_train_reads_stdin_and_order_means_tokens_spanned(tmp_path):
    model_file = tmp_path / "stdin.ngram"
    invoke("train", "-", "-o", str(model_file), "--order", "2", input=CORPUS)
    model = ngram.load(model_file)
    reference = ngram.train(CORPUS, 2)
    assert model.bits_per_char(CORPUS[:100]) == pytest.approx(reference.bits_per_char(CORPUS[:100]))
    help_text = " ".join(re.sub(r"[│╭╮╰╯─]", " ", invoke("train", "--help")).split())
    assert "0 = uniform" in help_text and "previous N-1 tokens" in help_text


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "simulacra", "ngram", *args],
                          capture_output=True, text=True, timeout=60)


def assert_one_line_error(result: subprocess.CompletedProcess, *needles: str) -> None:
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0]


def test_non_utf8_corpus_is_one_line_naming_the_file(tmp_path):
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("na\u00efve caf\u00e9".encode("latin-1"))
    result = run_cli("train", str(bad), "-o", str(tmp_path / "m.ngram"))
    assert_one_line_error(result, "latin1.txt", "UTF-8")
    assert not (tmp_path / "m.ngram").exists()


def test_corrupt_model_is_one_line(tmp_path, corpus_file):
    fake = tmp_path / "fake.ngram"
    fake.write_bytes(b"\x1f\x8b\x08 definitely not a model")
    assert_one_line_error(run_cli("eval", str(fake), "hello"), "fake.ngram", "ngram train")
    assert_one_line_error(run_cli("eval", str(corpus_file), "hello"), "dickens.txt", "not a saved")
    assert_one_line_error(run_cli("eval", str(tmp_path / "none.ngram"), "hello"), "none.ngram")


def test_bad_level_is_one_line(corpus_file, tmp_path):
    result = run_cli("train", str(corpus_file), "-o", str(tmp_path / "m.ngram"), "--level", "bytes")
    assert_one_line_error(result, "bytes", "--level")
