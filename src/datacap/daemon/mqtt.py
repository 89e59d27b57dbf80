"""The daemon plugin publishing to Home Assistant over MQTT (``[mqtt]``).

The rounds run on a thread of their own with a read-only connection (one store, many readers): a
round computes every card's status, which takes a while on a small machine with several cards, and
must never hold up the metering thread. At most every ``interval`` seconds it reads the store
through the query layer and publishes only the states that changed (all of them, and every
discovery config, again after each reconnect). The socket work is paho's own thread.
"""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from datacap.config import Config
from datacap.errors import DatacapError
from datacap.meter.links import LinkSample, ProcNetDev
from datacap.model import AttribDelta
from datacap.mqtt import ha
from datacap.mqtt.publisher import Publisher
from datacap.mqtt.snapshot import rates_between, take_snapshot
from datacap.store import Reader, open_read
from datacap.timeutil import UTC

log = logging.getLogger("datacap.daemon.mqtt")


class MqttPlugin:
    name = "mqtt"

    def __init__(self, cfg: Config, db_path: Path) -> None:
        assert cfg.mqtt is not None
        self.cfg = cfg
        self.mcfg = cfg.mqtt
        self.db_path = db_path
        self.publisher = Publisher(self.mcfg, self.mcfg.password())
        self.links = ProcNetDev()
        self._sample: LinkSample | None = None
        self._generation = -1
        self._sent: dict[str, str] = {}  # topic -> payload last published in this connection
        self._flushed = threading.Event()  # the store has new figures
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="datacap-mqtt", daemon=True)
        self._thread.start()

    def poll(self, now: float) -> Iterable[AttribDelta]:
        return ()

    def after_flush(self, now: float) -> None:
        self._flushed.set()  # the round itself runs on the MQTT thread

    def _run(self) -> None:
        while not self._stop.is_set():
            self._flushed.wait(self.mcfg.interval)
            if self._stop.is_set():
                break
            if self._flushed.is_set() or self.publisher.generation != self._generation:
                self._flushed.clear()
                self._round()
                self._stop.wait(self.mcfg.interval)  # at most one round per interval
        self._round()  # the daemon's last flush is in the store: leave states that match it

    def _round(self) -> None:
        if not self.publisher.connected:
            return
        generation = self.publisher.generation
        try:
            messages = self._messages(time.time())
        except (DatacapError, OSError, sqlite3.Error) as exc:
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
        conn = open_read(self.db_path)
        try:
            reader = Reader(conn, self.cfg.tz, self.cfg.week_start_index)
            snap = take_snapshot(reader, self.cfg, dt.datetime.fromtimestamp(now, UTC), rates,
                                 self.mcfg.top_clients)
        finally:
            conn.close()
        node, prefix = self.mcfg.node, self.mcfg.discovery_prefix
        out: list[ha.Message] = []
        for entity in ha.entities(snap):
            out.append(ha.discovery(node, prefix, entity))  # unchanged configs are not sent again
            out.extend(ha.states(node, entity))
        return out

    def close(self) -> None:
        self._stop.set()
        self._flushed.set()
        self._thread.join(timeout=60)
        self.publisher.close()
        log.info("mqtt: offline")
