"""The worker's MQTT connection (paho-mqtt 2.x, MQTT 3.1.1, QoS 1, never retained).

paho's network thread reconnects by itself (also when the broker is not up
yet at start). After every (re)connect this module subscribes to the worker's
task topic and calls `on_connected`, which re-publishes register and status.
The last will is the worker's `offline` status.

Messages are only published while connected: paho would otherwise queue them
and flush stale heartbeats on reconnect; what matters (register and the
current status) is published again on reconnect anyway.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.reasoncodes import ReasonCode

from .config import Config
from .payloads import JsonObject, Topics, encode, status_payload

QOS = 1
KEEPALIVE_S = 10  # docs/protocol.md, "MQTT session"
RECONNECT_MIN_DELAY_S = 1
RECONNECT_MAX_DELAY_S = 10

log = logging.getLogger("aiswarm_worker.mqtt")


def now_ms() -> int:
    return int(time.time() * 1000)


class MqttLink:
    def __init__(
        self,
        config: Config,
        topics: Topics,
        on_connected: Callable[[], None],
        on_task_message: Callable[[bytes, int], None],
    ) -> None:
        self._config = config
        self._topics = topics
        self._on_connected = on_connected
        self._on_task_message = on_task_message
        self._take_tasks = True
        self._connected_at: float | None = None  # time.monotonic() of the last accepted connect
        self._quick_drops = 0  # connections in a row the broker closed within a keepalive
        self._lock = threading.Lock()
        self._client = self._make_client()

    def _make_client(self) -> mqtt.Client:
        config = self._config
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=config.worker_id,  # the broker ACL matches on it (%c)
            clean_session=True,
            protocol=MQTTProtocolVersion.MQTTv311,
        )
        if config.mqtt_username is not None:
            client.username_pw_set(config.mqtt_username, config.mqtt_password)
        if config.mqtt_tls:
            client.tls_set(ca_certs=config.mqtt_ca_file)  # None: the system CA store
        client.reconnect_delay_set(RECONNECT_MIN_DELAY_S, RECONNECT_MAX_DELAY_S)
        self._set_will(client)
        client.on_connect = self._handle_connect
        client.on_disconnect = self._handle_disconnect
        client.on_connect_fail = self._handle_connect_fail
        client.on_message = self._handle_message
        return client

    def _set_will(self, client: mqtt.Client) -> None:
        """The will carries the time of the connect it is sent with, so it is refreshed before each."""
        will = status_payload(self._config.worker_id, "offline", None, now_ms())
        client.will_set(self._topics.status, encode(will), qos=QOS, retain=False)

    def start(self) -> None:
        log.info("connecting to MQTT %s:%d", self._config.mqtt_host, self._config.mqtt_port)
        self._client.connect_async(self._config.mqtt_host, self._config.mqtt_port, keepalive=KEEPALIVE_S)
        self._client.loop_start()

    def stop(self) -> None:
        """Clean disconnect (the broker then does not send the will: publish `offline` first)."""
        self._client.disconnect()
        self._client.loop_stop()

    @property
    def connected(self) -> bool:
        return self._client.is_connected()

    def publish(self, topic: str, payload: JsonObject) -> mqtt.MQTTMessageInfo | None:
        if not self._client.is_connected():
            return None
        return self._client.publish(topic, encode(payload), qos=QOS, retain=False)

    def publish_and_wait(self, topic: str, payload: JsonObject, timeout_s: float) -> bool:
        """Publishes and waits for the broker's PUBACK; False if not connected or no ack in time."""
        info = self.publish(topic, payload)
        if info is None:
            return False
        try:
            info.wait_for_publish(timeout_s)
        except (RuntimeError, ValueError):  # the connection dropped meanwhile
            return False
        return info.is_published()

    def stop_taking_tasks(self) -> None:
        with self._lock:
            self._take_tasks = False
        self._client.unsubscribe(self._topics.tasks)

    # paho callbacks: they run on paho's network thread and must not block.

    def _handle_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode, properties: Any
    ) -> None:
        if reason.is_failure:
            log.error("MQTT connect refused: %s", reason)
            return
        log.info("MQTT connected to %s:%d", self._config.mqtt_host, self._config.mqtt_port)
        self._connected_at = time.monotonic()
        _disable_nagle(client)
        with self._lock:
            take_tasks = self._take_tasks
        if take_tasks:
            client.subscribe(self._topics.tasks, qos=QOS)
        try:
            self._on_connected()
        except Exception:  # an exception here would end paho's network thread
            log.exception("announcing the worker after connect failed")

    def _handle_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        log.warning("MQTT broker %s:%d unreachable; retrying", self._config.mqtt_host, self._config.mqtt_port)

    def _handle_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode, properties: Any
    ) -> None:
        if reason.is_failure:
            lived_s = None if self._connected_at is None else time.monotonic() - self._connected_at
            quick = lived_s is not None and lived_s < KEEPALIVE_S
            self._quick_drops = self._quick_drops + 1 if quick else 0
            if lived_s is not None and self._quick_drops >= 2:
                log.error(duplicate_id_hint(self._config.worker_id, round(lived_s * 1000)))
            else:
                log.warning("MQTT connection lost (%s); reconnecting", reason)
        self._connected_at = None
        self._set_will(client)

    def _handle_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        received_ms = now_ms()
        if message.topic != self._topics.tasks:
            log.warning("dropped a message on unexpected topic %s", message.topic)
            return
        try:
            self._on_task_message(bytes(message.payload), received_ms)
        except Exception:  # an exception here would end paho's network thread
            log.exception("handling a task message failed")


def duplicate_id_hint(worker_id: str, lived_ms: int) -> str:
    """The log line of a connection the broker closed within a keepalive (docs/protocol.md, "MQTT session")."""
    return (
        f"MQTT: the broker closed the connection {lived_ms} ms after accepting it; another client is probably "
        f"connected with the same client id {worker_id} (WORKER_ID): the broker drops the older connection each "
        "time one connects. Give every worker its own WORKER_ID (the default is unique)"
    )


def _disable_nagle(client: mqtt.Client) -> None:
    """Sends small packets at once: with Nagle's algorithm a status published
    right after another packet waits for the broker's delayed ACK (~40 ms)."""
    sock = client.socket()
    if isinstance(sock, socket.socket):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
