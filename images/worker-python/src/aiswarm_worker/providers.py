"""LLM providers behind one function, `ask_llm` (docs/protocol.md, "Providers").

Pure parts, unit-tested without a network: `select_provider`, the request
builders and the response parsers. The I/O is one small JSON POST over the
standard library's urllib, bounded as a whole by LLM_TIMEOUT_MS.

Failures never raise out of `ask_llm`: they become an `LlmOutcome` whose
`error` names the provider and what went wrong (e.g. `gemini: HTTP 429`) and
never the key.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Literal

from .config import Config

ProviderName = Literal["gemini", "openai", "offline"]
OFFLINE_PREFIX = "[offline]"


class ProviderError(Exception):
    """What went wrong, without the provider name (ask_llm adds it)."""


@dataclass(frozen=True)
class ProviderChoice:
    name: ProviderName
    api_key: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class LlmOutcome:
    provider: ProviderName
    answer: str = ""
    error: str = ""


@dataclass(frozen=True)
class JsonPost:
    url: str
    headers: dict[str, str] = field(repr=False)  # may hold a key
    body: dict[str, Any]


def select_provider(
    mode: str, user_key: str | None, gemini_key: str | None, openai_base_url: str | None
) -> ProviderChoice:
    """Which provider answers a task, and with which key (see the contract's Providers section)."""
    if mode == "offline":
        return ProviderChoice("offline")
    if mode == "gemini":
        return ProviderChoice("gemini", user_key or gemini_key)
    if mode == "openai":
        return ProviderChoice("openai", user_key)  # None: ask_llm falls back to OPENAI_API_KEY
    if user_key:
        return ProviderChoice("gemini", user_key)
    if gemini_key:
        return ProviderChoice("gemini", gemini_key)
    if openai_base_url:
        return ProviderChoice("openai", None)
    return ProviderChoice("offline")


def default_provider(config: Config) -> ProviderName:
    """The provider a task without a user key gets; announced in `register`."""
    return select_provider(config.llm_provider, None, config.gemini_api_key, config.openai_base_url).name


def gemini_request(base_url: str, model: str, api_key: str, query: str) -> JsonPost:
    return JsonPost(
        url=f"{base_url}/v1beta/models/{model}:generateContent",
        headers={"x-goog-api-key": api_key},
        body={"contents": [{"role": "user", "parts": [{"text": query}]}]},
    )


def openai_request(base_url: str, model: str, api_key: str | None, query: str) -> JsonPost:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    return JsonPost(
        url=f"{base_url}/chat/completions",
        headers=headers,
        body={"model": model, "messages": [{"role": "user", "content": query}]},
    )


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ProviderError("response is not JSON") from None
    if not isinstance(parsed, dict):
        raise ProviderError("response has no answer")
    return parsed


def parse_gemini_answer(body: bytes) -> str:
    """The concatenated text of candidates[0].content.parts[*]."""
    try:
        parts = _json_object(body)["candidates"][0]["content"]["parts"]
        texts = [part["text"] for part in parts if isinstance(part, dict) and "text" in part]
    except (KeyError, IndexError, TypeError):
        raise ProviderError("response has no answer") from None
    answer = "".join(text for text in texts if isinstance(text, str))
    if not answer:
        raise ProviderError("response has no answer")
    return answer


def parse_openai_answer(body: bytes) -> str:
    """choices[0].message.content."""
    try:
        content = _json_object(body)["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise ProviderError("response has no answer") from None
    if not isinstance(content, str) or not content:
        raise ProviderError("response has no answer")
    return content


def offline_answer(worker_id: str, query: str) -> str:
    """The contract's offline answer, word for word (docs/protocol.md, Providers)."""
    return (
        f"{OFFLINE_PREFIX} No LLM is configured on worker {worker_id}, so this is not a real answer "
        f"(set GEMINI_API_KEY or OPENAI_BASE_URL to get one). Your question was: {query}"
    )


READ_CHUNK_BYTES = 64 * 1024


def _read_body_by(response: http.client.HTTPResponse, deadline: float) -> bytes:
    """The whole body, or TimeoutError once `deadline` (time.monotonic) has passed.

    The socket timeout only bounds each read, so a server that trickles a byte
    at a time would keep a plain read() going forever.
    """
    chunks: list[bytes] = []
    while True:
        if time.monotonic() > deadline:
            raise TimeoutError()
        chunk = response.read1(READ_CHUNK_BYTES)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _post_json_blocking(post: JsonPost, timeout_s: float) -> bytes:
    deadline = time.monotonic() + timeout_s
    request = urllib.request.Request(
        post.url,
        data=json.dumps(post.body).encode("utf-8"),
        headers={"Content-Type": "application/json", "Accept": "application/json", **post.headers},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return _read_body_by(response, deadline)
    except urllib.error.HTTPError as error:  # any non-2xx status
        raise ProviderError(f"HTTP {error.code}") from None
    except TimeoutError:
        raise
    except urllib.error.URLError as error:
        if isinstance(error.reason, TimeoutError):
            raise TimeoutError() from None
        raise ProviderError(f"connection failed ({type(error.reason).__name__})") from None
    except (OSError, http.client.HTTPException) as error:
        raise ProviderError(f"connection failed ({type(error).__name__})") from None


def post_json(post: JsonPost, timeout_ms: int) -> bytes:
    """POSTs JSON and returns the 2xx body; the whole exchange is bounded by timeout_ms.

    urllib's timeout applies per socket operation, so the call runs in a
    daemon thread that the caller stops waiting for at the deadline; the thread
    itself gives up at its next read after the deadline (one socket timeout at
    most), even when the server trickles bytes to keep the socket busy.
    """
    outcome: dict[str, bytes | BaseException] = {}

    def run() -> None:
        try:
            outcome["body"] = _post_json_blocking(post, timeout_ms / 1000)
        except BaseException as error:  # handed to the caller's thread below
            outcome["error"] = error

    thread = threading.Thread(target=run, name="llm-http", daemon=True)
    thread.start()
    thread.join(timeout_ms / 1000)
    if thread.is_alive():
        raise ProviderError(f"timeout after {timeout_ms} ms")
    error = outcome.get("error")
    if isinstance(error, TimeoutError):
        raise ProviderError(f"timeout after {timeout_ms} ms")
    if isinstance(error, BaseException):
        raise error
    body = outcome["body"]
    assert isinstance(body, bytes)
    return body


def _ask(config: Config, choice: ProviderChoice, query: str) -> str:
    if choice.name == "offline":
        return offline_answer(config.worker_id, query)
    if choice.name == "gemini":
        if not choice.api_key:
            raise ProviderError("no API key configured")
        post = gemini_request(config.gemini_base_url, config.gemini_model, choice.api_key, query)
        return parse_gemini_answer(post_json(post, config.llm_timeout_ms))
    if config.openai_base_url is None:
        raise ProviderError("OPENAI_BASE_URL is not set")
    key = choice.api_key or config.openai_api_key
    post = openai_request(config.openai_base_url, config.openai_model, key, query)
    return parse_openai_answer(post_json(post, config.llm_timeout_ms))


def ask_llm(config: Config, choice: ProviderChoice, query: str) -> LlmOutcome:
    """Asks the chosen provider; every failure becomes an error outcome naming the provider."""
    try:
        return LlmOutcome(choice.name, answer=_ask(config, choice, query))
    except ProviderError as error:
        return LlmOutcome(choice.name, error=f"{choice.name}: {error}")
    except Exception as error:  # a bug or an odd URL must not take the worker down
        return LlmOutcome(choice.name, error=f"{choice.name}: unexpected error ({type(error).__name__})")
