"""The daemon plugin publishing to Home Assistant over MQTT (``[mqtt]``).

It runs on the metering thread after a flush, at most every ``interval`` seconds: reads the store
through the query layer, and publishes only the states that changed (all of them, and every
discovery config, again after each reconnect). The socket work is paho's own thread.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterable

from datacap.config import Config
from datacap.errors import DatacapError
from datacap.meter.links import LinkSample, ProcNetDev
from datacap.model import AttribDelta
from datacap.mqtt import ha
from datacap.mqtt.publisher import Publisher
from datacap.mqtt.snapshot import rates_between, take_snapshot
from datacap.store import Reader, Writer
from datacap.timeutil import UTC

log = logging.getLogger("datacap.daemon.mqtt")


class MqttPlugin:
    name = "mqtt"

    def __init__(self, cfg: Config, writer: Writer) -> None:
        assert cfg.mqtt is not None
        self.cfg = cfg
        self.mcfg = cfg.mqtt
        self.writer = writer
        self.publisher = Publisher(self.mcfg, self.mcfg.password())
        self.links = ProcNetDev()
        self._sample: LinkSample | None = None
        self._due = 0.0
        self._generation = -1
        self._sent: dict[str, str] = {}  # topic -> payload last published in this connection

    def poll(self, now: float) -> Iterable[AttribDelta]:
        return ()

    def after_flush(self, now: float) -> None:
        if not self.publisher.connected:
            return
        generation = self.publisher.generation
        if now < self._due and generation == self._generation:
            return
        self._due = now + self.mcfg.interval
        try:
            messages = self._messages(now)
        except (DatacapError, OSError) as exc:
            log.warning("mqtt: no states this round: %s", exc)
            return
        if generation != self._generation:  # a new connection: the broker may have lost anything
            self._sent.clear()
            self._generation = generation
        fresh = [m for m in messages if self._sent.get(m.topic) != m.payload]
        if fresh and self.publisher.publish(fresh) == len(fresh):
            self._sent.update((m.topic, m.payload) for m in fresh)

    def _messages(self, now: float) -> list[ha.Message]:
        sample = self.links.sample()
        rates = rates_between(self._sample, sample)
        self._sample = sample
        reader = Reader(self.writer.conn, self.cfg.tz, self.cfg.week_start_index)
        snap = take_snapshot(reader, self.cfg, dt.datetime.fromtimestamp(now, UTC), rates, self.mcfg.top_clients)
        node, prefix = self.mcfg.node, self.mcfg.discovery_prefix
        out: list[ha.Message] = []
        for entity in ha.entities(snap):
            out.append(ha.discovery(node, prefix, entity))  # unchanged configs are not sent again
            out.extend(ha.states(node, entity))
        return out

    def close(self) -> None:
        started = time.monotonic()
        if self.publisher.connected:  # the daemon's last flush is in the store: leave states that match it
            self._due = 0.0
            self.after_flush(time.time())
        self.publisher.close()
        log.info("mqtt: offline (%.1f s to close)", time.monotonic() - started)
