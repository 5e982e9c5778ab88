"""MQTT topics and JSON payloads (docs/protocol.md, "MQTT topics" and "Payloads").

Pure: builds the payloads the worker publishes and validates the one it
receives (`task`). Validation errors say what is wrong without quoting the
payload, because a payload is never logged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from collections.abc import Callable
from typing import Any, Literal

from .log_levels import LogLevel

PROTOCOL_VERSION = 1
MAX_PAYLOAD_BYTES = 64 * 1024
MAX_QUERY_CHARS = 16000

Status = Literal["idle", "busy", "offline"]
JsonObject = dict[str, Any]


class PayloadError(ValueError):
    """A received payload is malformed; the message says why (never its content)."""


@dataclass(frozen=True)
class Topics:
    prefix: str
    worker_id: str

    def _worker(self, leaf: str) -> str:
        return f"{self.prefix}/workers/{self.worker_id}/{leaf}"

    @property
    def register(self) -> str:
        return self._worker("register")

    @property
    def heartbeat(self) -> str:
        return self._worker("heartbeat")

    @property
    def status(self) -> str:
        return self._worker("status")

    @property
    def tasks(self) -> str:
        return self._worker("tasks")

    @property
    def logs(self) -> str:
        return f"{self.prefix}/logs"


@dataclass(frozen=True)
class Identity:
    """Who this worker is; sent in register and in every heartbeat."""

    worker_id: str
    language: str
    node: str


@dataclass(frozen=True)
class Task:
    task_id: str
    query: str
    lease_ms: int
    has_credential: bool
    ts: int


def encode(payload: JsonObject) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def register_payload(identity: Identity, provider: str, now_ms: int) -> JsonObject:
    return {
        "v": PROTOCOL_VERSION,
        "type": "register",
        "worker_id": identity.worker_id,
        "language": identity.language,
        "node": identity.node,
        "provider": provider,
        "ts": now_ms,
    }


def heartbeat_payload(identity: Identity, status: Status, task_id: str | None, now_ms: int) -> JsonObject:
    return {
        "v": PROTOCOL_VERSION,
        "type": "heartbeat",
        "worker_id": identity.worker_id,
        "language": identity.language,
        "node": identity.node,
        "status": status,
        "task_id": task_id,
        "ts": now_ms,
    }


def status_payload(
    worker_id: str, status: Status, task_id: str | None, now_ms: int, rejected_task_id: str | None = None
) -> JsonObject:
    payload: JsonObject = {
        "v": PROTOCOL_VERSION,
        "type": "status",
        "worker_id": worker_id,
        "status": status,
        "task_id": task_id,
        "ts": now_ms,
    }
    if rejected_task_id is not None:
        payload["rejected_task_id"] = rejected_task_id
    return payload


def log_payload(source: str, level: LogLevel, message: str, now_ms: int, task_id: str | None = None) -> JsonObject:
    payload: JsonObject = {
        "v": PROTOCOL_VERSION,
        "type": "log",
        "source": source,
        "level": level,
        "message": message,
        "ts": now_ms,
    }
    if task_id is not None:
        payload["task_id"] = task_id
    return payload


def _is_int(value: object) -> bool:
    # bool is a subclass of int in Python, but `true` is not a number in the contract.
    return isinstance(value, int) and not isinstance(value, bool)


def _field(payload: dict[str, Any], name: str, kind: str, is_valid: Callable[[Any], bool]) -> Any:
    if name not in payload:
        raise PayloadError(f"missing field {name!r}")
    value = payload[name]
    if not is_valid(value):
        raise PayloadError(f"field {name!r} must be {kind}")
    return value


def parse_task(raw: bytes) -> Task:
    """Validates a `task` payload; raises PayloadError saying what is wrong."""
    if len(raw) > MAX_PAYLOAD_BYTES:
        raise PayloadError(f"payload is {len(raw)} bytes, over the {MAX_PAYLOAD_BYTES}-byte limit")
    try:
        payload = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise PayloadError("payload is not UTF-8 JSON") from None
    if not isinstance(payload, dict):
        raise PayloadError("payload is not a JSON object")
    if payload.get("v") != PROTOCOL_VERSION or not _is_int(payload.get("v")):
        raise PayloadError(f"field 'v' must be {PROTOCOL_VERSION}")
    if payload.get("type") != "task":
        raise PayloadError("field 'type' must be 'task'")

    task_id: str = _field(payload, "task_id", "a non-empty string", lambda v: isinstance(v, str) and v != "")
    query: str = _field(
        payload,
        "query",
        f"a string of 1 to {MAX_QUERY_CHARS} characters",
        lambda v: isinstance(v, str) and 1 <= len(v) <= MAX_QUERY_CHARS,
    )
    lease_ms: int = _field(payload, "lease_ms", "a non-negative integer", lambda v: _is_int(v) and v >= 0)
    has_credential: bool = _field(payload, "has_credential", "a boolean", lambda v: isinstance(v, bool))
    ts: int = _field(payload, "ts", "a non-negative integer", lambda v: _is_int(v) and v >= 0)
    return Task(task_id=task_id, query=query, lease_ms=lease_ms, has_credential=has_credential, ts=ts)
