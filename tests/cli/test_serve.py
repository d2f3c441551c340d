"""`simulacra serve`: refuses to listen beyond loopback without a key, reports bad input in one
line, and serves ems and models to the openai client when started for real."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest

from simulacra.cli.serve import loopback


def run_cli(*args: str, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "simulacra", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


@pytest.mark.parametrize("host, expected", [("127.0.0.1", True), ("localhost", True), ("::1", True),
                                            ("127.0.0.2", True), ("0.0.0.0", False), ("192.168.1.5", False),
                                            ("example.com", False)])
def test_loopback(host, expected):
    assert loopback(host) is expected


def test_refuses_a_public_address_without_a_key():
    result = run_cli("serve", "--host", "0.0.0.0", "--model", "fake:hi", env={"SIMULACRA_API_KEY": ""})
    assert result.returncode == 1
    assert "refusing to serve on 0.0.0.0 without an API key" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_a_missing_em_folder_is_one_line(tmp_path):
    result = run_cli("serve", str(tmp_path / "nobody"))
    assert result.returncode == 1 and "no em folder" in result.stderr
    assert "Traceback" not in result.stderr


def test_serves_for_real(tmp_path):
    import openai

    em = tmp_path / "mara"
    em.mkdir()
    (em / "config.yaml").write_text('continuation_model: "fake:Evening, traveller."\n')
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "simulacra", "serve", str(em), "--port", str(port),
                               "--model", "fake:raw text", "--log-level", "warning"],
                              env={**os.environ, "SIMULACRA_API_KEY": "k1,k2"},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="k2", max_retries=0)
        deadline = time.monotonic() + 60
        while True:
            try:
                ids = {m.id for m in client.models.list()}
                break
            except openai.APIConnectionError:
                assert server.poll() is None, server.stderr.read()
                assert time.monotonic() < deadline, "the server never answered"
                time.sleep(0.2)
        assert {"mara", "fake:raw text"} <= ids
        reply = client.chat.completions.create(model="mara", messages=[{"role": "user", "content": "hi"}])
        assert reply.choices[0].message.content == "Evening, traveller."
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="k3", max_retries=0).models.list()
    finally:
        server.terminate()
        server.wait(20)
    assert "serving mara, fake:raw text" in server.stderr.read()
