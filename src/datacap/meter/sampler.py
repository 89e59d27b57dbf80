"""Turns a stream of counter readings and link events into 5-minute deltas, ready to flush.

The buffer is only cleared after the store confirms the write, so a failed flush (a full disk, a
locked file) loses nothing: the next flush carries everything since the last successful one.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from datacap.meter.delta import Delta, Kind, Reading, counter_delta
from datacap.meter.links import LinkEvent, LinkSample
from datacap.store.writer import MeterEvent, TrafficDelta
from datacap.timeutil import spread

log = logging.getLogger("datacap.meter")


@dataclass
class Batch:
    """What one flush writes: deltas, the readings they were computed up to, and events."""

    traffic: list[TrafficDelta]
    counters: dict[str, Reading]
    events: list[MeterEvent]
    link_types: dict[str, str]


@dataclass
class Meter:
    """Keeps the last reading of every metered interface and the deltas not yet stored."""

    persisted: dict[str, Reading]
    max_rate_bps: int
    wanted: Callable[[str], bool] = lambda name: name != "lo"
    card_for: Callable[[str], str | None] = lambda name: None
    last: dict[str, Reading] = field(init=False)
    _pending: dict[tuple[int, str, str | None], list[int]] = field(init=False)
    _dirty: set[str] = field(init=False, default_factory=set)
    _events: list[MeterEvent] = field(init=False, default_factory=list)
    _types: dict[str, str] = field(init=False, default_factory=dict)
    _started: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        self.last = dict(self.persisted)
        self._pending = defaultdict(lambda: [0, 0, 0, 0])

    def on_sample(self, sample: LinkSample) -> None:
        for name, reading in sample.readings.items():
            if self.wanted(name):
                self._types.setdefault(name, sample.link_types.get(name, ""))
                self.observe(name, reading)
        self._started = True

    def on_events(self, events: Iterable[LinkEvent]) -> None:
        """NEWLINK/DELLINK carry counters: each is one more reading (DELLINK: the final one).

        The last reading of a deleted interface is kept: if it comes back (a modem re-enumerated),
        its new ifindex makes the next reading count from zero, also across a daemon restart.
        """
        for event in events:
            if event.reading is not None and event.name and self.wanted(event.name):
                self.observe(event.name, event.reading)
                if event.deleted:
                    log.info("%s: removed; its final counters are kept", event.name)

    def note_event(self, kind: str, detail: str, iface: str | None = None) -> None:
        """An event of the meter itself (not of one delta), stored with the next flush."""
        self._events.append(MeterEvent(int(time.time()), iface, kind, detail))

    def observe(self, name: str, reading: Reading) -> Delta:
        prev = self.last.get(name)
        if prev is None and self._started:
            # An interface that appeared while we run was created with zeroed counters: count them all.
            prev = Reading(reading.ifindex, reading.boot_id, reading.boottime, reading.wall, 0, 0, 0, 0)
        delta = counter_delta(prev, reading, self.max_rate_bps)
        if delta.kind is Kind.GLITCH and prev is not None:
            # The counter that dropped keeps its previous value as the base: nothing is counted twice
            # if it comes back, and nothing is invented if it does not.
            reading = Reading(reading.ifindex, reading.boot_id, reading.boottime, reading.wall,
                              *(max(a, b) for a, b in zip(prev.counters(), reading.counters(), strict=True)))
        self.last[name] = reading
        self._dirty.add(name)
        if delta.kind in (Kind.RESET, Kind.REBOOT, Kind.REJECTED, Kind.WRAP, Kind.GLITCH):
            log.log(logging.WARNING if delta.kind is Kind.REJECTED else logging.INFO, "%s: %s", name, delta.note)
            self._events.append(MeterEvent(int(reading.wall), name, delta.kind.value, delta.note))
        if delta.kind is not Kind.REJECTED:
            self._add(name, delta)
        return delta

    def _add(self, name: str, delta: Delta) -> None:
        card = self.card_for(name)
        values = (delta.rx_bytes, delta.tx_bytes, delta.rx_packets, delta.tx_packets)
        for i, amount in enumerate(values):
            for bucket, part in spread(delta.start, delta.end, amount):
                self._pending[(bucket, name, card)][i] += part

    def batch(self) -> Batch:
        traffic = [TrafficDelta(bucket, name, vals[0], vals[1], vals[2], vals[3], card)
                   for (bucket, name, card), vals in sorted(self._pending.items(), key=lambda kv: kv[0][:2])
                   if any(vals)]
        return Batch(traffic, {n: self.last[n] for n in self._dirty}, list(self._events), dict(self._types))

    def flushed(self, batch: Batch) -> None:
        """The store has the batch: forget it (anything observed since stays pending)."""
        for d in batch.traffic:
            key = (d.bucket, d.interface, d.card)
            vals = self._pending[key]
            for i, amount in enumerate((d.rx_bytes, d.tx_bytes, d.rx_packets, d.tx_packets)):
                vals[i] -= amount
            if not any(vals):
                del self._pending[key]
        for name, reading in batch.counters.items():
            if self.last.get(name) is reading:
                self._dirty.discard(name)
        del self._events[: len(batch.events)]
        self._types.clear()

    def pending_bytes(self) -> int:
        return sum(v[0] + v[1] for v in self._pending.values())
