"""A test-side MQTT client: records every message under the prefix and publishes tasks."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from .net import LOOPBACK


@dataclass(frozen=True)
class Seen:
    topic: str
    raw: bytes
    at: float

    @property
    def json(self) -> Any:
        return json.loads(self.raw)


class MqttProbe:
    def __init__(
        self, port: int, prefix: str, ca_file: str | None = None, username: str | None = None,
        password: str | None = None, persistent_session: bool = False,
    ) -> None:
        """persistent_session: the broker queues messages for the probe while it is away
        (it then needs a broker that keeps sessions across restarts to survive one)."""
        self.prefix = prefix
        self.messages: list[Seen] = []
        self._changed = threading.Condition()
        self._subscribed = threading.Event()
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"probe-{time.monotonic_ns()}", clean_session=not persistent_session
        )
        self._client.reconnect_delay_set(1, 2)
        if username is not None:
            self._client.username_pw_set(username, password)
        if ca_file is not None:
            self._client.tls_set(ca_certs=ca_file)
        self._client.on_connect = lambda c, u, f, rc, p: c.subscribe(f"{prefix}/#", qos=1)
        self._client.on_subscribe = lambda c, u, mid, rcs, p: self._subscribed.set()
        self._client.on_message = self._record
        self._client.connect(LOOPBACK, port)
        self._client.loop_start()
        assert self._subscribed.wait(10), "probe could not subscribe"

    def _record(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        with self._changed:
            self.messages.append(Seen(message.topic, bytes(message.payload), time.monotonic()))
            self._changed.notify_all()

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def publish(self, topic: str, payload: bytes | dict[str, Any]) -> None:
        raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self._client.publish(topic, raw, qos=1).wait_for_publish(5)

    def on(self, leaf_or_topic: str) -> list[Any]:
        """JSON payloads seen on `<prefix>/<leaf_or_topic>`, in order."""
        topic = f"{self.prefix}/{leaf_or_topic}"
        with self._changed:
            return [m.json for m in self.messages if m.topic == topic]

    def wait_for(self, leaf_or_topic: str, predicate: Callable[[Any], bool], timeout_s: float = 10) -> Any:
        """The first JSON payload on the topic that satisfies predicate; fails the test on timeout."""
        topic = f"{self.prefix}/{leaf_or_topic}"

        def find() -> Any:
            for message in self.messages:
                if message.topic == topic:
                    payload = message.json
                    if predicate(payload):
                        return payload
            return None

        with self._changed:
            found = self._changed.wait_for(find, timeout_s)
        assert found is not None, f"no message on {topic} matching the condition within {timeout_s} s"
        return found

    def count(self, leaf_or_topic: str, predicate: Callable[[Any], bool]) -> int:
        return sum(1 for payload in self.on(leaf_or_topic) if predicate(payload))
