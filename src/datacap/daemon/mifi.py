"""The daemon plugin reading ``[[sources]]`` (MiFi sticks' own web APIs) into the store.

Each source has a reader thread (the HTTP round trips never block the metering thread) that hands
readings over a queue; the metering thread applies them: bytes, the reading they came from and any
event in one transaction, the stick's texts into datacap's texts, and a cross-check against the
local interface that sees the same traffic. A refused password is said once and nothing is stored.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from datacap.config import Config
from datacap.errors import DatacapError
from datacap.meter.delta import Delta, Kind
from datacap.meter.links import ProcNetDev
from datacap.meter.mifi import SourceConfig, StickClient, StickReading, make_client, stick_delta
from datacap.model import AttribDelta, Reading
from datacap.store import Writer
from datacap.store.writer import MeterEvent, TrafficDelta
from datacap.timeutil import spread

log = logging.getLogger("datacap.daemon.mifi")
CHECK_BYTES = 8 << 20  # compare with the local meter once this much was counted by the stick
MIN_DISAGREEMENT = 1 << 20  # differences below this are noise (the stick's own traffic, timing)


def disagreement(stick: int, local: int, tolerance: float) -> str | None:
    """A sentence when the stick's and the local meter's counts differ beyond ``tolerance``; else None."""
    diff = abs(stick - local)
    if diff <= MIN_DISAGREEMENT or diff <= tolerance * max(stick, local):
        return None
    return (f"the stick counted {stick} bytes, the local meter {local} over the same time "
            f"({diff / max(stick, local, 1):.0%} apart, tolerance {tolerance:.0%})")


def stored_reading(writer: Writer, interface: str) -> Reading | None:
    row = writer.conn.execute("SELECT ifindex, boot_id, boottime, wall, rx_bytes, tx_bytes, rx_packets, tx_packets "
                              "FROM counters WHERE iface = ?", (interface,)).fetchone()
    return None if row is None else Reading(*row)


def apply_reading(writer: Writer, src: SourceConfig, reading: StickReading, max_rate_bps: int) -> Delta:
    """Store what ``reading`` adds (bytes, the reading itself, events) in one transaction."""
    prev = stored_reading(writer, src.interface)
    delta = stick_delta(prev, reading, max_rate_bps)
    traffic: dict[int, list[int]] = {}
    for i, amount in enumerate((delta.rx_bytes, delta.tx_bytes)):
        for bucket, part in spread(delta.start, delta.end, amount):
            traffic.setdefault(bucket, [0, 0])[i] += part
    events = []
    if delta.kind in (Kind.RESET, Kind.GLITCH, Kind.REJECTED):
        events.append(MeterEvent(int(reading.wall), src.interface, delta.kind.value, delta.note))
        log.log(logging.WARNING if delta.kind is Kind.REJECTED else logging.INFO, "%s: %s", src.interface, delta.note)
    rows = [TrafficDelta(b, src.interface, rx, tx, 0, 0, None) for b, (rx, tx) in sorted(traffic.items())]
    writer.commit(traffic=rows, counters={src.interface: reading.as_counters()}, events=events,
                  seen_at=int(reading.wall), link_types={src.interface: src.kind})
    return delta


@dataclass
class _Check:
    stick: int = 0
    local: int = 0
    last_local: int | None = None


class MifiPlugin:
    name = "sources"

    def __init__(self, cfg: Config, writer: Writer,
                 client_for: Callable[[SourceConfig], StickClient] = make_client) -> None:
        self.cfg = cfg
        self.writer = writer
        self.readings: queue.Queue[tuple[SourceConfig, StickReading]] = queue.Queue(maxsize=100)
        self.stop = threading.Event()
        self.links = ProcNetDev()
        self.checks = {s.name: _Check() for s in cfg.sources}
        self.threads = []
        for src in cfg.sources:
            client = client_for(src)  # a missing password file is a ConfigError now, not later
            t = threading.Thread(target=self._reader, args=(src, client), name=f"datacap-source-{src.name}",
                                 daemon=True)
            t.start()
            self.threads.append(t)
        log.info("sources: reading %s", ", ".join(s.interface for s in cfg.sources))

    def _reader(self, src: SourceConfig, client: StickClient) -> None:
        said: str | None = None
        while not self.stop.is_set():
            try:
                reading = client.read(src.texts)
            except DatacapError as exc:
                if str(exc) != said:  # once per change, not once per interval
                    log.warning("%s: not read: %s", src.interface, exc)
                    said = str(exc)
            else:
                if said is not None:
                    log.info("%s: read again", src.interface)
                said = None
                try:
                    self.readings.put((src, reading), timeout=src.interval)
                except queue.Full:
                    log.warning("%s: the store is not keeping up; a reading waits for the next", src.interface)
            self.stop.wait(src.interval)

    def poll(self, now: float) -> Iterable[AttribDelta]:
        return ()

    def after_flush(self, now: float) -> None:
        while True:
            try:
                src, reading = self.readings.get_nowait()
            except queue.Empty:
                return
            try:
                delta = apply_reading(self.writer, src, reading, self.cfg.meter.max_rate_bps)
                self._texts(src, reading)
            except DatacapError as exc:
                log.warning("%s: reading not stored: %s", src.interface, exc)
                continue
            self._cross_check(src, reading, delta)

    def _texts(self, src: SourceConfig, reading: StickReading) -> None:
        if not reading.texts:
            return
        from datacap.modem.texts import TextLedger
        from datacap.modem.types import SmsMessage, TextPart

        ledger = TextLedger(self.writer.conn)
        for t in reading.texts:
            msg = SmsMessage(src.interface, None, t.sender, t.text, t.timestamp, (f"{src.interface}/{t.ident}",),
                             (TextPart(f"{src.interface}/{t.ident}", t.text, t.timestamp, "stick", stored=True),))
            if ledger.admit(msg, reading.wall) is not None:
                log.info("%s: a text from %s", src.interface, t.sender)

    def _cross_check(self, src: SourceConfig, reading: StickReading, delta: Delta) -> None:
        """Add this reading's bytes and the local interface's since the last one; compare every 8 MiB."""
        if src.cross_check is None:
            return
        check = self.checks[src.name]
        local = self.links.sample().readings.get(src.cross_check)
        total = None if local is None else local.rx_bytes + local.tx_bytes
        if total is None or check.last_local is None or total < check.last_local or delta.kind is not Kind.NORMAL:
            check.stick = check.local = 0  # start again from a clean pair of readings
        else:
            check.stick += delta.total_bytes
            check.local += total - check.last_local
        check.last_local = total
        if check.stick + check.local < CHECK_BYTES:
            return
        said = disagreement(check.stick, check.local, src.tolerance)
        if said is not None:
            detail = json.dumps({"interface": src.cross_check, "stick_bytes": check.stick,
                                 "local_bytes": check.local, "note": said})
            self.writer.commit(events=[MeterEvent(int(reading.wall), src.interface, "source_disagrees", detail)])
            log.warning("%s: %s (%s)", src.interface, said, src.cross_check)
        check.stick = check.local = 0

    def close(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=30)
