"""`tunesmith serve` on a tiny LoRA run, driven by the official openai client over loopback: models, chat,
stream, completions, schema-constrained JSON, bad requests answered with 4xx while the server keeps serving, and
no process left when it stops."""

import json
import os
import socket
import subprocess
import sys

import jsonschema
import pytest
import requests

from tunesmith.errors import ConfigError
from tunesmith.serve.run import LLAMA_SERVER, ServeOptions, check_exposure, serve_run, serving_template

openai = pytest.importorskip("openai", reason="make llama-server installs the openai client (make test does)")
pytestmark = pytest.mark.skipif(not LLAMA_SERVER.is_file(), reason="make llama-server builds it (make test does)")

SCHEMA = {
    "type": "object",
    "properties": {"label": {"enum": ["positive", "negative"]}},
    "required": ["label"],
    "additionalProperties": False,
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def served(tiny_run):
    options = ServeOptions(port=free_port(), parallel=2, context=512, max_tokens=24, threads=2)
    with serve_run(tiny_run, options) as handle:
        yield handle
    assert handle.process.poll() is not None


@pytest.fixture(scope="module")
def client(served):
    return openai.OpenAI(base_url=served.url, api_key="none", max_retries=0, timeout=60)


def ask(client, served, **extra):
    messages = [{"role": "user", "content": "Bank1 lent money to Person1 in City1 ."}]
    return client.chat.completions.create(model=served.model, messages=messages, temperature=0, **extra)


def test_the_model_is_listed_under_the_runs_name(client, served):
    assert served.model in [m.id for m in client.models.list().data]


def test_chat_and_stream_give_the_same_greedy_answer(client, served):
    whole = ask(client, served, max_tokens=8)
    assert whole.choices[0].finish_reason in ("stop", "length")
    chunks = list(ask(client, served, max_tokens=8, stream=True))
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert len(chunks) > 1 and streamed == whole.choices[0].message.content


def test_completions(client, served):
    done = client.completions.create(model=served.model, prompt="Bank1 lent", max_tokens=4, temperature=0)
    assert done.usage.completion_tokens <= 4 and isinstance(done.choices[0].text, str)


def test_json_schema_output_validates_against_the_schema(client, served):
    format_ = {"type": "json_schema", "json_schema": {"name": "label", "schema": SCHEMA, "strict": True}}
    answer = ask(client, served, max_tokens=24, response_format=format_)
    jsonschema.validate(json.loads(answer.choices[0].message.content), SCHEMA)


def test_the_runs_default_system_message_is_put_first(tiny_run):
    template = serving_template(tiny_run)
    assert "Extract the entities as a JSON list of names." in template.split("{%- endif %}")[0]


@pytest.mark.parametrize(
    "body, status",
    [
        (b"{not json", 400),
        (
            json.dumps(
                {
                    "messages": [{"role": "user", "content": "hi"}],
                    "response_format": {"type": "json_schema", "json_schema": {"schema": {"type": 12}}},
                }
            ).encode(),
            400,
        ),  # fmt: skip
        (json.dumps({"messages": [{"role": "user", "content": "word " * 3000}]}).encode(), 400),  # past the context
    ],
    ids=["malformed-json", "not-a-json-schema", "prompt-past-the-context"],
)
def test_a_bad_request_is_a_4xx_and_the_next_one_succeeds(client, served, body, status):
    answer = requests.post(f"{served.url}/chat/completions", data=body, headers={"Content-Type": "application/json"})
    assert 400 <= answer.status_code < 500, answer.text
    assert answer.json()["error"]["message"]
    assert ask(client, served, max_tokens=2).choices[0].message.content is not None


@pytest.mark.parametrize("max_tokens", [10**9, -1, 0], ids=["huge", "negative", "zero"])
def test_max_tokens_outside_the_servers_limit_is_a_400(client, served, max_tokens):
    with pytest.raises(openai.BadRequestError, match="max_tokens"):
        ask(client, served, max_tokens=max_tokens)
    assert ask(client, served, max_tokens=2).choices[0].message.content is not None


def test_an_unknown_model_is_a_404(client, served):
    with pytest.raises(openai.NotFoundError, match="not served"):
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}], max_tokens=2)


def test_a_client_that_disconnects_mid_stream_does_not_stop_the_server(client, served):
    body = {"model": served.model, "messages": [{"role": "user", "content": "hi"}], "stream": True, "max_tokens": 24}
    with requests.post(f"{served.url}/chat/completions", json=body, stream=True, timeout=30) as answer:
        next(answer.iter_lines())  # one event, then hang up
    assert ask(client, served, max_tokens=2).choices[0].message.content is not None


def test_binding_beyond_loopback_needs_an_api_key(monkeypatch):
    monkeypatch.delenv("TUNESMITH_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="api-key"):
        check_exposure("0.0.0.0", None)
    check_exposure("0.0.0.0", "secret")
    check_exposure("127.0.0.1", None)


def test_the_cli_serves_until_sigint_and_leaves_no_process(tiny_run):
    port = free_port()
    command = [sys.executable, "-m", "tunesmith", "serve", str(tiny_run), "--port", str(port), "--parallel", "1"]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        said = ""
        for line in process.stderr:  # the CLI says where it serves once the engine is healthy
            said += line
            if "OpenAI(base_url=" in line:
                break
        assert requests.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200
        os.killpg(process.pid, 2)
        _, rest = process.communicate(timeout=60)
        stderr = said + rest
    finally:
        if process.poll() is None:
            os.killpg(process.pid, 9)
    assert process.returncode == 130, stderr[-500:]
    assert "serving" in stderr and "OpenAI(base_url=" in stderr
    with pytest.raises(requests.RequestException):
        requests.get(f"http://127.0.0.1:{port}/health", timeout=1)
    leftover = subprocess.run(["pgrep", "-f", f"--port {port}"], capture_output=True, text=True).stdout.strip()
    assert not leftover, f"engine still running: {leftover}"


def test_a_query_string_does_not_slip_a_request_past_the_checks(served):
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
    answer = requests.post(f"{served.url}/chat/completions?stream=false", json=body, timeout=30)
    assert answer.status_code == 404 and "not served" in answer.json()["error"]["message"]
