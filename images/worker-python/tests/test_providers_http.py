"""The real provider client code against fake Gemini and OpenAI-compatible servers on 127.0.0.1."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from aiswarm_worker.config import Config, load_config
from aiswarm_worker.providers import ProviderChoice, ask_llm
from helpers.fake_llm import FakeLlmServer, Script, gemini_body, openai_body
from helpers.net import free_port


@pytest.fixture
def server() -> Iterator[FakeLlmServer]:
    fake = FakeLlmServer()
    yield fake
    fake.stop()


def config_for(server: FakeLlmServer, timeout_ms: int = 3000) -> Config:
    return load_config({
        "GRPC_TOKEN": "t",
        "GEMINI_BASE_URL": server.base_url,
        "GEMINI_MODEL": "gemini-test",
        "OPENAI_BASE_URL": f"{server.base_url}/v1",
        "OPENAI_MODEL": "llama-test",
        "OPENAI_API_KEY": "server-openai-key",
        "LLM_TIMEOUT_MS": str(timeout_ms),
    })


GEMINI = ProviderChoice("gemini", "gem-key-1")
OPENAI = ProviderChoice("openai", None)


def test_gemini_success_sends_the_contract_request(server: FakeLlmServer) -> None:
    server.script = Script(200, gemini_body("Docker Swarm ", "is an orchestrator."))
    outcome = ask_llm(config_for(server), GEMINI, "What is Docker Swarm?")
    assert (outcome.provider, outcome.answer, outcome.error) == ("gemini", "Docker Swarm is an orchestrator.", "")
    [request] = server.requests
    assert request.path == "/v1beta/models/gemini-test:generateContent"
    assert request.headers["x-goog-api-key"] == "gem-key-1"
    assert request.body == {"contents": [{"role": "user", "parts": [{"text": "What is Docker Swarm?"}]}]}


def test_openai_success_sends_the_contract_request(server: FakeLlmServer) -> None:
    server.script = Script(200, openai_body("It orchestrates containers."))
    outcome = ask_llm(config_for(server), OPENAI, "What is Docker Swarm?")
    assert (outcome.provider, outcome.answer, outcome.error) == ("openai", "It orchestrates containers.", "")
    [request] = server.requests
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer server-openai-key"
    assert request.body == {"model": "llama-test", "messages": [{"role": "user", "content": "What is Docker Swarm?"}]}


def test_openai_user_key_replaces_the_server_key(server: FakeLlmServer) -> None:
    server.script = Script(200, openai_body("ok"))
    ask_llm(config_for(server), ProviderChoice("openai", "user-key-9"), "q")
    assert server.requests[0].headers["authorization"] == "Bearer user-key-9"


@pytest.mark.parametrize("status", [429, 500])
@pytest.mark.parametrize("choice", [GEMINI, OPENAI], ids=["gemini", "openai"])
def test_http_errors_become_error_results_naming_provider_and_status(
    server: FakeLlmServer, choice: ProviderChoice, status: int
) -> None:
    server.script = Script(status, {"error": {"message": "API key gem-key-1 over quota"}})
    outcome = ask_llm(config_for(server), choice, "q")
    assert outcome.answer == ""
    assert outcome.error == f"{choice.name}: HTTP {status}"
    assert "gem-key-1" not in outcome.error


@pytest.mark.parametrize("choice", [GEMINI, OPENAI], ids=["gemini", "openai"])
def test_a_server_that_never_answers_times_out_within_llm_timeout(
    server: FakeLlmServer, choice: ProviderChoice
) -> None:
    server.script = Script(hang=True)
    started = time.monotonic()
    outcome = ask_llm(config_for(server, timeout_ms=400), choice, "q")
    elapsed = time.monotonic() - started
    assert outcome.error == f"{choice.name}: timeout after 400 ms"
    assert 0.35 <= elapsed < 2.0


def test_a_server_that_trickles_its_body_times_out_and_leaves_no_thread_behind() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    stop = threading.Event()

    def trickle() -> None:
        connection, _ = listener.accept()
        with connection:
            connection.recv(65536)
            connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{")
            while not stop.wait(0.05):  # one byte every 50 ms: no single read ever times out
                try:
                    connection.sendall(b" ")
                except OSError:
                    return

    server = threading.Thread(target=trickle, daemon=True)
    server.start()
    try:
        config = load_config({"GRPC_TOKEN": "t", "GEMINI_BASE_URL": f"http://127.0.0.1:{port}", "LLM_TIMEOUT_MS": "400"})
        started = time.monotonic()
        outcome = ask_llm(config, GEMINI, "q")
        assert outcome.error == "gemini: timeout after 400 ms"
        assert time.monotonic() - started < 2.0
        # the client thread gives up too, within about one socket timeout of the deadline
        give_up_by = time.monotonic() + 2.0
        while any(t.name == "llm-http" for t in threading.enumerate()) and time.monotonic() < give_up_by:
            time.sleep(0.05)
        assert not any(t.name == "llm-http" for t in threading.enumerate())
    finally:
        stop.set()
        listener.close()


def test_a_body_without_an_answer_is_an_error_result(server: FakeLlmServer) -> None:
    server.script = Script(200, {"candidates": []})
    assert ask_llm(config_for(server), GEMINI, "q").error == "gemini: response has no answer"


def test_gemini_without_any_key_is_an_error_without_a_request(server: FakeLlmServer) -> None:
    outcome = ask_llm(config_for(server), ProviderChoice("gemini", None), "q")
    assert outcome.error == "gemini: no API key configured"
    assert server.requests == []


def test_connection_refused_is_an_error_result() -> None:
    config = load_config({"GRPC_TOKEN": "t", "OPENAI_BASE_URL": f"http://127.0.0.1:{free_port()}/v1"})
    outcome = ask_llm(config, OPENAI, "q")
    assert outcome.error.startswith("openai: connection failed")


def test_offline_needs_no_server() -> None:
    outcome = ask_llm(load_config({"GRPC_TOKEN": "t"}), ProviderChoice("offline"), "q?")
    assert outcome.provider == "offline" and outcome.answer.startswith("[offline]") and outcome.error == ""
