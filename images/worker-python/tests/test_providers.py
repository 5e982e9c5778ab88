"""Provider selection, request building and response parsing (pure)."""

from __future__ import annotations

import json

import pytest

from aiswarm_worker.providers import (
    ProviderChoice,
    ProviderError,
    gemini_request,
    offline_answer,
    openai_request,
    parse_gemini_answer,
    parse_openai_answer,
    select_provider,
)

OPENAI_URL = "http://127.0.0.1:1/v1"


@pytest.mark.parametrize(
    ("mode", "user_key", "gemini_key", "openai_url", "expected"),
    [
        # auto: user key -> gemini with it; server gemini key -> gemini; openai url -> openai; else offline
        ("auto", "user-k", "server-k", OPENAI_URL, ProviderChoice("gemini", "user-k")),
        ("auto", None, "server-k", OPENAI_URL, ProviderChoice("gemini", "server-k")),
        ("auto", None, None, OPENAI_URL, ProviderChoice("openai", None)),
        ("auto", None, None, None, ProviderChoice("offline")),
        ("auto", "user-k", None, None, ProviderChoice("gemini", "user-k")),
        # gemini / openai: that provider, the user key replacing the server key
        ("gemini", None, "server-k", None, ProviderChoice("gemini", "server-k")),
        ("gemini", "user-k", "server-k", None, ProviderChoice("gemini", "user-k")),
        ("gemini", None, None, OPENAI_URL, ProviderChoice("gemini", None)),
        ("openai", None, "server-k", OPENAI_URL, ProviderChoice("openai", None)),
        ("openai", "user-k", "server-k", OPENAI_URL, ProviderChoice("openai", "user-k")),
        # offline: always
        ("offline", "user-k", "server-k", OPENAI_URL, ProviderChoice("offline")),
    ],
)
def test_select_provider(
    mode: str, user_key: str | None, gemini_key: str | None, openai_url: str | None, expected: ProviderChoice
) -> None:
    assert select_provider(mode, user_key, gemini_key, openai_url) == expected


def test_choice_repr_hides_the_key() -> None:
    assert "user-k" not in repr(ProviderChoice("gemini", "user-k"))


def test_gemini_request_shape() -> None:
    post = gemini_request("http://h:1", "gemini-2.5-flash", "k1", "hi")
    assert post.url == "http://h:1/v1beta/models/gemini-2.5-flash:generateContent"
    assert post.headers == {"x-goog-api-key": "k1"}
    assert post.body == {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}


def test_openai_request_shape_with_and_without_key() -> None:
    post = openai_request("http://h:1/v1", "llama3.2", "k2", "hi")
    assert post.url == "http://h:1/v1/chat/completions"
    assert post.headers == {"Authorization": "Bearer k2"}
    assert post.body == {"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}]}
    assert openai_request("http://h:1/v1", "m", None, "hi").headers == {}


def test_gemini_answer_concatenates_the_parts_of_the_first_candidate() -> None:
    body = {"candidates": [{"content": {"parts": [{"text": "Hello "}, {"thought": True}, {"text": "world"}]}},
                           {"content": {"parts": [{"text": "ignored"}]}}]}
    assert parse_gemini_answer(json.dumps(body).encode()) == "Hello world"


def test_openai_answer_is_the_first_choice_content() -> None:
    body = {"choices": [{"message": {"role": "assistant", "content": "Swarm is..."}}]}
    assert parse_openai_answer(json.dumps(body).encode()) == "Swarm is..."


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[]", b"{}", b'{"candidates": []}', b'{"candidates": [{"content": {"parts": []}}]}',
     b'{"candidates": [{"finishReason": "SAFETY"}]}', b'{"candidates": [{"content": {"parts": [{"text": ""}]}}]}'],
)
def test_gemini_body_without_an_answer_is_an_error(body: bytes) -> None:
    with pytest.raises(ProviderError):
        parse_gemini_answer(body)


@pytest.mark.parametrize(
    "body",
    [b"not json", b"{}", b'{"choices": []}', b'{"choices": [{"message": {}}]}',
     b'{"choices": [{"message": {"content": null}}]}', b'{"choices": [{"message": {"content": 5}}]}'],
)
def test_openai_body_without_an_answer_is_an_error(body: bytes) -> None:
    with pytest.raises(ProviderError):
        parse_openai_answer(body)


def test_offline_answer_is_exactly_the_contract_text() -> None:
    assert offline_answer("python-vm2-1a2b", "What is Docker Swarm?") == (
        "[offline] No LLM is configured on worker python-vm2-1a2b, so this is not a real answer "
        "(set GEMINI_API_KEY or OPENAI_BASE_URL to get one). Your question was: What is Docker Swarm?"
    )
    long_query = "x" * 16000
    assert offline_answer("w", long_query).endswith("Your question was: " + long_query)
