"""MQTT topics and JSON payloads (docs/protocol.md, "MQTT topics" and "Payloads").

Builds the payloads the worker publishes; validates received ones against
proto/mqtt/payloads.schema.json (package data, copied into pb/ by
scripts/gen_proto.py) with jsonschema, after what the schema cannot say: the
byte limit, UTF-8 and JSON. Errors never quote the payload (it is never logged).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Literal, NamedTuple, NoReturn

import fastjsonschema
from jsonschema import Draft202012Validator, ValidationError
from referencing import Registry, Resource

from .log_levels import LogLevel

PROTOCOL_VERSION = 1
MAX_BYTES_KEYWORD = "x-max-payload-bytes"

Status = Literal["idle", "busy", "offline"]
Rule = Literal["too-large", "not-json", "not-object", "field"]
JsonObject = dict[str, Any]


class FieldProblem(NamedTuple):
    """A top-level field the schema refuses, and the schema keyword that refuses it."""

    field: str
    keyword: str


class PayloadError(ValueError):
    """A received payload is malformed; the message says why (never its content)."""

    def __init__(self, rule: Rule, reason: str, problems: tuple[FieldProblem, ...] = ()) -> None:
        super().__init__(reason)
        self.rule: Rule = rule
        self.problems = problems


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


def heartbeat_payload(
    identity: Identity, status: Status, task_id: str | None, now_ms: int, held_task_ids: list[str] | None = None
) -> JsonObject:
    """held_task_ids: the task in hand and the one waiting to run next; the master renews each one's lease."""
    return {
        "v": PROTOCOL_VERSION,
        "type": "heartbeat",
        "worker_id": identity.worker_id,
        "language": identity.language,
        "node": identity.node,
        "status": status,
        "task_id": task_id,
        "held_task_ids": held_task_ids if held_task_ids is not None else ([task_id] if task_id else []),
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


def _refuse_constant(name: str) -> NoReturn:
    # Python's json reads NaN and Infinity; JSON (and every other component) does not.
    raise ValueError(f"{name} is not JSON")


def _problems(errors: list[ValidationError]) -> tuple[FieldProblem, ...] | None:
    """The field of each error (the missing one for `required`); None when the payload is not an object."""
    problems: list[FieldProblem] = []
    for error in errors:
        keyword = str(error.validator)
        if error.absolute_path:
            problems.append(FieldProblem(str(error.absolute_path[0]), keyword))
        elif keyword == "required" and isinstance(error.validator_value, list) and isinstance(error.instance, dict):
            problems += [FieldProblem(str(name), keyword) for name in error.validator_value if name not in error.instance]
        elif keyword == "type":
            return None
    return tuple(dict.fromkeys(problems))


class PayloadSchema:
    """proto/mqtt/payloads.schema.json, compiled: one validator per message ($defs entry of type object)."""

    def __init__(self, schema: JsonObject) -> None:
        self.max_bytes = int(schema[MAX_BYTES_KEYWORD])
        schema_id = str(schema["$id"])  # the registry knows the schema by it, so nothing is fetched
        registry: Registry[Any] = Registry().with_resource(schema_id, Resource.from_contents(schema))
        names = [name for name, definition in schema["$defs"].items() if definition.get("type") == "object"]
        self._validators = {name: Draft202012Validator({"$ref": f"{schema_id}#/$defs/{name}"}, registry=registry) for name in names}
        # The hot path: fastjsonschema compiles a message to Python code (about 10 times faster
        # than jsonschema's interpreter per task). It speaks draft 7, whose keywords this schema
        # shares with 2020-12 except one: draft 7 ignores the siblings of a `$ref`, so a message
        # with such an object gets no fast path. A payload the fast path refuses goes to
        # jsonschema, which has the last word and names every problem (the shared vectors hold
        # both to the same verdicts).
        defs = schema["$defs"]
        self._fast = {
            name: fastjsonschema.compile({"$schema": "http://json-schema.org/draft-07/schema#", "$defs": defs, "$ref": f"#/$defs/{name}"})
            for name in names
            if not _ref_with_siblings(defs[name], defs)
        }

    def validate(self, message_type: str, raw: bytes) -> JsonObject:
        """The payload as a `message_type` message; raises PayloadError saying why not."""
        if len(raw) > self.max_bytes:
            raise PayloadError("too-large", f"payload is {len(raw)} bytes, over the {self.max_bytes}-byte limit")
        try:
            payload = json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant)
        except (UnicodeDecodeError, ValueError, RecursionError):
            raise PayloadError("not-json", "payload is not UTF-8 JSON") from None
        fast = self._fast.get(message_type)
        if fast is not None:
            try:
                fast(payload)
                return dict(payload)
            except fastjsonschema.JsonSchemaException:
                pass
        errors = list(self._validators[message_type].iter_errors(payload))
        if not errors:
            return dict(payload)
        problems = _problems(errors)
        if problems is None:
            raise PayloadError("not-object", "payload is not a JSON object")
        fields = ", ".join(f"{p.field} ({p.keyword})" for p in problems)
        raise PayloadError("field", f"invalid field(s): {fields}", problems)


def _ref_with_siblings(node: Any, defs: JsonObject, seen: frozenset[str] = frozenset()) -> bool:
    """Whether `node`, or a definition it refers to, has an object with `$ref` and other keywords."""
    if isinstance(node, list):
        return any(_ref_with_siblings(item, defs, seen) for item in node)
    if not isinstance(node, dict):
        return False
    ref = node.get("$ref")
    if isinstance(ref, str):
        if len([key for key in node if key not in ("$ref", "description", "title")]) > 0:
            return True
        name = ref.rsplit("/", 1)[-1]
        if ref.startswith("#/$defs/") and name not in seen and _ref_with_siblings(defs.get(name), defs, seen | {name}):
            return True
    return any(_ref_with_siblings(value, defs, seen) for key, value in node.items() if key != "$ref")


@cache
def payload_schema() -> PayloadSchema:
    """The schema shipped in this package (read once)."""
    text = resources.files("aiswarm_worker.pb").joinpath("payloads.schema.json").read_text("utf-8")
    return PayloadSchema(json.loads(text))


def parse_task(raw: bytes) -> Task:
    """Validates a `task` payload; raises PayloadError saying what is wrong."""
    payload = payload_schema().validate("task", raw)
    # JSON has one number type: 1e3 is the integer 1000, and the schema says these are integers.
    return Task(
        task_id=payload["task_id"],
        query=payload["query"],
        lease_ms=int(payload["lease_ms"]),
        has_credential=payload["has_credential"],
        ts=int(payload["ts"]),
    )
