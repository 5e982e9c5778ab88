"""MQTT payload building and task validation (pure)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from aiswarm_worker.payloads import (
    MAX_PAYLOAD_BYTES,
    Identity,
    PayloadError,
    Topics,
    encode,
    heartbeat_payload,
    log_payload,
    parse_task,
    register_payload,
    status_payload,
)

IDENTITY = Identity("python-vm2-1a2b", "python", "vm2")
VALID_TASK: dict[str, Any] = {
    "v": 1, "type": "task", "task_id": "q_01", "query": "What is Docker Swarm?",
    "lease_ms": 30000, "has_credential": False, "ts": 1764355200100,
}


def task_bytes(**changes: Any) -> bytes:
    payload = {**VALID_TASK, **changes}
    return json.dumps({k: v for k, v in payload.items() if v is not ...}).encode()


def test_topics_follow_the_prefix_and_worker_id() -> None:
    topics = Topics("ai-system", "w1")
    assert topics.register == "ai-system/workers/w1/register"
    assert topics.heartbeat == "ai-system/workers/w1/heartbeat"
    assert topics.status == "ai-system/workers/w1/status"
    assert topics.tasks == "ai-system/workers/w1/tasks"
    assert topics.logs == "ai-system/logs"


def test_register_and_heartbeat_carry_the_whole_identity() -> None:
    assert register_payload(IDENTITY, "offline", 5) == {
        "v": 1, "type": "register", "worker_id": "python-vm2-1a2b", "language": "python",
        "node": "vm2", "provider": "offline", "ts": 5,
    }
    assert heartbeat_payload(IDENTITY, "busy", "q_1", 6) == {
        "v": 1, "type": "heartbeat", "worker_id": "python-vm2-1a2b", "language": "python",
        "node": "vm2", "status": "busy", "task_id": "q_1", "ts": 6,
    }


def test_status_has_null_task_and_optional_rejected_task() -> None:
    assert status_payload("w1", "idle", None, 7) == {
        "v": 1, "type": "status", "worker_id": "w1", "status": "idle", "task_id": None, "ts": 7,
    }
    rejected = status_payload("w1", "busy", "q_1", 8, rejected_task_id="q_2")
    assert rejected["rejected_task_id"] == "q_2" and rejected["task_id"] == "q_1"


def test_log_payload_and_compact_utf8_encoding() -> None:
    payload = log_payload("w1", "info", "tâche q_1 done", 9, task_id="q_1")
    assert payload == {"v": 1, "type": "log", "source": "w1", "level": "info",
                       "message": "tâche q_1 done", "task_id": "q_1", "ts": 9}
    assert "task_id" not in log_payload("w1", "error", "x", 9)
    assert encode({"a": "é"}) == '{"a":"é"}'.encode()


def test_a_valid_task_parses() -> None:
    task = parse_task(task_bytes())
    assert (task.task_id, task.query, task.lease_ms, task.has_credential, task.ts) == (
        "q_01", "What is Docker Swarm?", 30000, False, 1764355200100)


def test_unknown_fields_are_ignored() -> None:
    assert parse_task(task_bytes(extra={"x": 1})).task_id == "q_01"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not json", "not UTF-8 JSON"),
        (b"\xff\xfe", "not UTF-8 JSON"),
        (b"[" * 60000, "not UTF-8 JSON"),
        (b"[1, 2]", "not a JSON object"),
        (task_bytes(v=2), "field 'v' must be 1"),
        (task_bytes(v=True), "field 'v' must be 1"),
        (task_bytes(type="status"), "field 'type' must be 'task'"),
        (task_bytes(task_id=...), "missing field 'task_id'"),
        (task_bytes(task_id=""), "field 'task_id' must be a non-empty string"),
        (task_bytes(task_id=7), "field 'task_id' must be a non-empty string"),
        (task_bytes(query=""), "field 'query' must be a string of 1 to 16000 characters"),
        (task_bytes(query="x" * 16001), "field 'query' must be a string of 1 to 16000 characters"),
        (task_bytes(query=None), "field 'query'"),
        (task_bytes(lease_ms=-1), "field 'lease_ms' must be a non-negative integer"),
        (task_bytes(lease_ms=1.5), "field 'lease_ms' must be a non-negative integer"),
        (task_bytes(lease_ms=True), "field 'lease_ms' must be a non-negative integer"),
        (task_bytes(has_credential="false"), "field 'has_credential' must be a boolean"),
        (task_bytes(has_credential=...), "missing field 'has_credential'"),
        (task_bytes(ts="now"), "field 'ts' must be a non-negative integer"),
    ],
)
def test_malformed_tasks_are_rejected_with_a_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(PayloadError, match=reason.replace("(", r"\(")):
        parse_task(raw)


def test_oversized_payload_is_rejected_before_parsing() -> None:
    raw = task_bytes(query="x" * 100, pad="y" * MAX_PAYLOAD_BYTES)
    with pytest.raises(PayloadError, match="over the 65536-byte limit"):
        parse_task(raw)


def test_the_reason_never_quotes_the_payload() -> None:
    with pytest.raises(PayloadError) as caught:
        parse_task(task_bytes(query="secret-query-text", lease_ms="x"))
    assert "secret-query-text" not in str(caught.value)
