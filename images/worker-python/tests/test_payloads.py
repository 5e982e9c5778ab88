"""MQTT payloads: the shared test vectors, and what only this worker does (its builders, Task)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from aiswarm_worker.payloads import (
    Identity,
    PayloadError,
    Topics,
    encode,
    heartbeat_payload,
    log_payload,
    parse_task,
    payload_schema,
    register_payload,
    status_payload,
)

VECTORS = Path(__file__).resolve().parents[3] / "proto" / "mqtt" / "vectors" / "payloads.json"
IDENTITY = Identity("python-vm2-1a2b", "python", "vm2")


def vector_bytes(group: dict[str, Any], case: dict[str, Any]) -> bytes:
    """The bytes a case stands for (proto/mqtt/vectors/format.schema.json says how)."""
    if "text" in case:
        return str(case["text"]).encode("utf-8") * int(case.get("repeat", 1))
    if "hex" in case:
        return bytes.fromhex(case["hex"])
    payload = {**group["base"], **case.get("set", {})}
    for name in case.get("unset", []):
        del payload[name]
    if "fill" in case:
        payload[case["fill"]["field"]] = case["fill"]["unit"] * case["fill"]["times"]
    raw = encode(payload)
    pad_to = int(case.get("pad_to_bytes", len(raw)))
    assert len(raw) <= pad_to, f"vector {case['name']!r}: payload is already {len(raw)} bytes"
    return raw + b" " * (pad_to - len(raw))


def vector_cases() -> list[Any]:
    groups: list[dict[str, Any]] = json.loads(VECTORS.read_text("utf-8"))["groups"]
    return [
        pytest.param(group["type"], vector_bytes(group, case), case, id=f"{group['type']}: {case['name']}")
        for group in groups
        for case in group["cases"]
    ]


@pytest.mark.parametrize(("message_type", "raw", "case"), vector_cases())
def test_shared_vector(message_type: str, raw: bytes, case: dict[str, Any]) -> None:
    if case["valid"]:
        payload_schema().validate(message_type, raw)
        return
    with pytest.raises(PayloadError) as caught:
        payload_schema().validate(message_type, raw)
    assert caught.value.rule == case["rule"]
    if case["rule"] == "field":
        assert {p.field for p in caught.value.problems} == {case["field"]}
        assert case["keyword"] in {p.keyword for p in caught.value.problems}


@pytest.mark.parametrize(
    ("message_type", "payload", "expected"),
    [
        ("register", register_payload(IDENTITY, "offline", 5), {
            "v": 1, "type": "register", "worker_id": "python-vm2-1a2b", "language": "python",
            "node": "vm2", "provider": "offline", "ts": 5}),
        ("heartbeat", heartbeat_payload(IDENTITY, "busy", "q_1", 6), {
            "v": 1, "type": "heartbeat", "worker_id": "python-vm2-1a2b", "language": "python",
            "node": "vm2", "status": "busy", "task_id": "q_1", "held_task_ids": ["q_1"], "ts": 6}),
        ("heartbeat", heartbeat_payload(IDENTITY, "busy", "q_1", 6, ["q_1", "q_2"]), {
            "v": 1, "type": "heartbeat", "worker_id": "python-vm2-1a2b", "language": "python",
            "node": "vm2", "status": "busy", "task_id": "q_1", "held_task_ids": ["q_1", "q_2"], "ts": 6}),
        ("heartbeat", heartbeat_payload(IDENTITY, "idle", None, 6), {
            "v": 1, "type": "heartbeat", "worker_id": "python-vm2-1a2b", "language": "python",
            "node": "vm2", "status": "idle", "task_id": None, "held_task_ids": [], "ts": 6}),
        ("status", status_payload("w1", "idle", None, 7), {
            "v": 1, "type": "status", "worker_id": "w1", "status": "idle", "task_id": None, "ts": 7}),
        ("rejection", status_payload("w1", "busy", "q_1", 8, rejected_task_id="q_2"), {
            "v": 1, "type": "status", "worker_id": "w1", "status": "busy", "task_id": "q_1",
            "rejected_task_id": "q_2", "ts": 8}),
        ("lastWill", status_payload("w1", "offline", None, 9), {
            "v": 1, "type": "status", "worker_id": "w1", "status": "offline", "task_id": None, "ts": 9}),
        ("log", log_payload("w1", "info", "tâche q_1 done", 9, task_id="q_1"), {
            "v": 1, "type": "log", "source": "w1", "level": "info", "message": "tâche q_1 done",
            "task_id": "q_1", "ts": 9}),
        ("log", log_payload("w1", "error", "x", 9), {
            "v": 1, "type": "log", "source": "w1", "level": "error", "message": "x", "ts": 9}),
    ],
)
def test_published_payloads_are_the_documented_ones(
    message_type: str, payload: dict[str, Any], expected: dict[str, Any]
) -> None:
    assert payload == expected
    assert payload_schema().validate(message_type, encode(payload)) == expected


def test_encoding_is_compact_utf8() -> None:
    assert encode({"a": "é", "b": 1}) == '{"a":"é","b":1}'.encode()


def test_topics_follow_the_prefix_and_worker_id() -> None:
    topics = Topics("ai-system", "w1")
    assert topics.register == "ai-system/workers/w1/register"
    assert topics.heartbeat == "ai-system/workers/w1/heartbeat"
    assert topics.status == "ai-system/workers/w1/status"
    assert topics.tasks == "ai-system/workers/w1/tasks"
    assert topics.logs == "ai-system/logs"


def test_a_task_reads_into_typed_fields() -> None:
    raw = b'{"v":1,"type":"task","task_id":"q_01","query":"Why?","lease_ms":3e4,"has_credential":true,"ts":17}'
    task = parse_task(raw)
    assert (task.task_id, task.query, task.lease_ms, task.has_credential, task.ts) == ("q_01", "Why?", 30000, True, 17)
    assert isinstance(task.lease_ms, int)


def test_the_reason_never_quotes_the_payload() -> None:
    with pytest.raises(PayloadError) as caught:
        parse_task(b'{"v":1,"type":"secret-type","task_id":"q","query":"secret-query-text","lease_ms":"x"}')
    assert caught.value.rule == "field"
    assert str(caught.value).startswith("invalid field(s): ")
    assert "secret" not in str(caught.value)

