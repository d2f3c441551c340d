"""Schemathesis fuzzes the API from its own OpenAPI schema: valid and invalid bodies alike must
get no 5xx, a documented status, and responses that match the documented schemas.

(Schemathesis' pytest plugin does not load under this pytest, so its strategies are driven with
hypothesis directly; ``call_and_validate`` runs its standard checks. A bounded run by default;
SIMULACRA_FUZZ_EXAMPLES=500 digs deeper.)
"""
from __future__ import annotations

import json
import os

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402

from schemathesis.checks import positive_data_acceptance  # noqa: E402

from simulacra.serve import create_app  # noqa: E402
from simulacra.serve.schemas import ChatCompletionChunk, CompletionChunk, ErrorResponse  # noqa: E402

EM_REPLY = "Hi there, friend."
FAKE = "fake:Hello there, my friend."
CAPABILITY_REASONS = ("does not give logprobs", "cannot call tools", "best_of is not supported",
                      "suffix (fill-in-the-middle) is not supported", "should match pattern '^[0-9]+$'",
                      "cannot be written in the")
# (logit_bias keys are token ids: the schema says so with propertyNames, which the generator ignores)  # a speaker name the em's transcript format cannot hold
OPERATIONS = [("GET", "/v1/models"), ("GET", "/v1/models/{model}"), ("POST", "/v1/chat/completions"),
              ("POST", "/v1/completions")]


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ems") / "mara"
    folder.mkdir()
    (folder / "config.yaml").write_text(f'continuation_model: "fake:{EM_REPLY}"\n')
    return schemathesis.openapi.from_asgi("/openapi.json", create_app([folder], [FAKE]))


def _steer(case, mode: str) -> None:
    """Random model names would all be 404s: send most cases to the em or the model (never
    repairing a name that a negative case broke on purpose)."""
    body = case.body
    if isinstance(body, dict) and isinstance(body.get("model"), str) and body["model"]:
        body["model"] = ("mara", FAKE, body["model"])[len(repr(body)) % 3]
    if mode == "positive" and (case.path_parameters or {}).get("model") and len(repr(case.path_parameters)) % 2:
        case.path_parameters["model"] = "mara"


@pytest.mark.parametrize("mode", ["positive", "negative"])
@pytest.mark.parametrize("method, path", OPERATIONS)
def test_the_api_keeps_its_schema(api_schema, method, path, mode):
    operation = api_schema[path][method]
    if mode == "negative" and method == "GET":
        pytest.skip("nothing to get wrong: no body, and any string names a model")

    @settings(max_examples=int(os.environ.get("SIMULACRA_FUZZ_EXAMPLES", 25)), deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(schemathesis.GenerationMode(mode)))
    def run(case):
        _steer(case, mode)
        # Schema-valid requests may still ask for what this model lacks (logprobs from an em,
        # tools from a model without a template): those 400s are checked below instead.
        response = case.call_and_validate(excluded_checks=[positive_data_acceptance])
        if "text/event-stream" in response.headers.get("content-type", ""):
            _check_events(response.text, path)
        if mode == "positive":
            assert response.status_code in (200, 404) or (
                response.status_code == 400 and any(reason in response.json()["error"]["message"]
                                                    for reason in CAPABILITY_REASONS)), response.text

    run()


def _check_events(text: str, path: str) -> None:
    """Each SSE event is a chunk in the documented shape (or an error), and [DONE] ends them."""
    chunk = ChatCompletionChunk if path.endswith("chat/completions") else CompletionChunk
    events = [block.removeprefix("data: ") for block in text.split("\n\n") if block]
    assert events[-1] == "[DONE]", text[-200:]
    for event in events[:-1]:
        data = json.loads(event)
        (ErrorResponse if "error" in data else chunk).model_validate(data)


def test_the_schema_documents_the_error_shape(api_schema):
    responses = api_schema["/v1/chat/completions"]["POST"].definition.raw["responses"]
    assert {"200", "400", "401", "404", "413", "429"} <= set(responses)
    assert "text/event-stream" in responses["200"]["content"]
