"""The MQTT connection: paho-mqtt's network thread, the availability topic and its last will.

``online`` is published (retained) on every connect and ``offline`` on a clean stop; the broker
publishes the last will ``offline`` when the connection dies without one (kill -9, power loss).
The password is handed to paho only; nothing here logs it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from typing import Any

from datacap.mqtt.config import MqttConfig
from datacap.mqtt.ha import Message, availability_topic

log = logging.getLogger("datacap.mqtt")
QOS = 1


class Publisher:
    def __init__(self, cfg: MqttConfig, password: str | None) -> None:
        import paho.mqtt.client as mqtt

        self.cfg = cfg
        self.avail = availability_topic(cfg.node)
        self.generation = 0  # bumped on each (re)connect: everything is published again then
        self._lock = threading.Lock()
        self._connected = False
        self._last_problem: str | None = None
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"datacap-{cfg.node}",
                             protocol=mqtt.MQTTv311, clean_session=True)
        if cfg.username:
            client.username_pw_set(cfg.username, password)
        broker = cfg.broker
        if broker.tls:
            client.tls_set(ca_certs=cfg.ca_file)
        client.will_set(self.avail, "offline", qos=QOS, retain=True)
        client.reconnect_delay_set(1, 60)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.enable_logger(logging.getLogger("datacap.mqtt.paho"))
        self.client = client
        client.connect_async(broker.host, broker.port, keepalive=cfg.keepalive)
        client.loop_start()
        log.info("mqtt: publishing to %s:%d%s as node %s", broker.host, broker.port,
                 " (TLS)" if broker.tls else "", cfg.node)

    @property
    def connected(self) -> bool:
        with self._lock:
            return self._connected

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            self._problem(f"broker refused the connection: {reason}")
            return
        client.publish(self.avail, "online", qos=QOS, retain=True)
        with self._lock:
            self._connected = True
            self.generation += 1
        self._last_problem = None
        log.info("mqtt: connected")

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        with self._lock:
            self._connected = False
        if reason.is_failure:
            self._problem(f"disconnected: {reason}")

    def _problem(self, text: str) -> None:
        if text != self._last_problem:  # once per change, not once per retry
            log.warning("mqtt: %s", text)
            self._last_problem = text

    def publish(self, messages: Iterable[Message]) -> int:
        sent = 0
        for m in messages:
            info = self.client.publish(m.topic, m.payload, qos=QOS, retain=m.retain)
            if info.rc == 0:
                sent += 1
        return sent

    def close(self, timeout: float = 5.0) -> None:
        """Say offline (retained), wait for the broker to have it, disconnect and join paho's thread."""
        try:
            if self.connected:
                info = self.client.publish(self.avail, "offline", qos=QOS, retain=True)
                info.wait_for_publish(timeout)
            self.client.disconnect()
        finally:
            self.client.loop_stop()
