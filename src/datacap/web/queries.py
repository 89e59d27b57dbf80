"""Queries only the dashboard needs: the hour-of-day x weekday heatmap, live rates, store health.

The binning and rate arithmetic are pure functions; the SQL and /proc reads are thin wrappers.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from datacap.config import Config
from datacap.errors import InputError
from datacap.meter.links import LinkSample, ProcNetDev
from datacap.store import health
from datacap.store.reader import Reader
from datacap.timeutil import from_epoch, iso

WEEKDAY_KEYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def resolve_ifaces(reader: Reader, ifaces: Sequence[str] | None) -> list[str]:
    """Names matching the globs, as the CLI resolves --iface: a pattern matching nothing is an error."""
    if not ifaces:
        return reader.interface_names()
    missing = [p for p in ifaces if not reader.match_interfaces([p])]
    if missing:
        known = ", ".join(reader.interface_names()) or "none yet"
        raise InputError(f"iface {', '.join(missing)}: no such interface in the store (known: {known})")
    return reader.match_interfaces(ifaces)


def heatmap_cells(rows: Iterable[tuple[int, int, int]], tz: ZoneInfo) -> list[list[int]]:
    """Sum hourly buckets (start epoch, rx, tx) into 7 x 24 cells [weekday][local hour] of total bytes.

    Binning by the bucket's local start means a DST fall-back hour adds twice to its hour of day,
    and a skipped spring-forward hour adds nothing, which is what the clock on the wall showed.
    """
    cells = [[0] * 24 for _ in range(7)]
    for start, rx, tx in rows:
        local = dt.datetime.fromtimestamp(start, tz)
        cells[local.weekday()][local.hour] += rx + tx
    return cells


def heatmap_json(reader: Reader, cfg: Config, since: dt.datetime, until: dt.datetime,
                 ifaces: Sequence[str] | None = None) -> dict[str, Any]:
    """Bytes per hour of day and weekday over [since, until), from the hourly buckets."""
    names = set(resolve_ifaces(reader, ifaces))
    ids = [i for i, n in reader.conn.execute("SELECT id, name FROM interfaces") if n in names]
    rows: list[tuple[int, int, int]] = []
    if ids:
        marks = ",".join("?" * len(ids))
        rows = reader.conn.execute(
            f"SELECT start, sum(rx_bytes), sum(tx_bytes) FROM usage WHERE res = 'hour' AND start >= ? "
            f"AND start < ? AND iface_id IN ({marks}) GROUP BY start",
            (int(since.timestamp()), int(until.timestamp()), *ids)).fetchall()
    cells = heatmap_cells(rows, cfg.tz)
    total = sum(map(sum, cells))
    peak = max(((d, h) for d in range(7) for h in range(24)), key=lambda dh: cells[dh[0]][dh[1]])
    tz = cfg.tz
    return {"since": iso(since.astimezone(tz)), "until": iso(until.astimezone(tz)), "timezone": cfg.timezone,
            "unit": "bytes", "interfaces": sorted(names), "weekdays": list(WEEKDAY_KEYS), "cells": cells,
            "total_bytes": total,
            "peak": {"weekday": WEEKDAY_KEYS[peak[0]], "hour": peak[1],
                     "total_bytes": cells[peak[0]][peak[1]]} if total else None}


def health_json(reader: Reader, cfg: Config, now: float | None = None) -> dict[str, Any]:
    """When the daemon last flushed (its counters' wall time) and the newest stored bucket."""
    now = time.time() if now is None else now
    last_flush = reader.conn.execute("SELECT max(wall) FROM counters").fetchone()[0]
    newest = reader.conn.execute("SELECT max(start) FROM usage WHERE res = '5min'").fetchone()[0]
    tz = cfg.tz
    return {
        "at": iso(from_epoch(now, tz)),
        "last_flush": iso(from_epoch(last_flush, tz)) if last_flush else None,
        "last_flush_age_seconds": round(now - last_flush, 1) if last_flush else None,
        "newest_bucket": iso(from_epoch(newest, tz)) if newest is not None else None,
        "interfaces": len(reader.interface_names()),
        # the daemon's writes: {"writable": false, "held_bytes": ...} while a full disk refuses them
        "store": health.current(reader.meta(health.META_KEY)),
    }


@dataclass(frozen=True, slots=True)
class Rate:
    rx_bps: float
    tx_bps: float


def rates_between(a: LinkSample, b: LinkSample, names: Iterable[str]) -> dict[str, Rate]:
    """Bytes per second per interface between two samples; a counter that went back (reset) reads 0."""
    span = b.boottime - a.boottime
    out: dict[str, Rate] = {}
    if span <= 0 or a.boot_id != b.boot_id:
        return out
    for name in names:
        ra, rb = a.readings.get(name), b.readings.get(name)
        if ra is None or rb is None or ra.ifindex != rb.ifindex:
            continue
        out[name] = Rate(max(rb.rx_bytes - ra.rx_bytes, 0) / span, max(rb.tx_bytes - ra.tx_bytes, 0) / span)
    return out


class LiveRates:
    """Server-side rates from /proc/net/dev: each call compares with the previous sample.

    A sample is kept for at most ``max_age`` seconds; the first call (or one after a long pause)
    samples twice ``min_span`` apart so the answer is never empty. Shared by all requests.
    """

    def __init__(self, source: Callable[[], LinkSample] | None = None, min_span: float = 0.25,
                 max_age: float = 30.0) -> None:
        self._sample = source or ProcNetDev().sample
        self._min_span = min_span
        self._max_age = max_age
        self._prev: LinkSample | None = None
        self._older: LinkSample | None = None
        self._lock = threading.Lock()

    def read(self, names: Sequence[str]) -> dict[str, Rate]:
        with self._lock:
            prev = self._prev
            now = self._sample()
            if prev is None or now.boottime - prev.boottime > self._max_age:
                prev = now
                time.sleep(self._min_span)  # one short pause, only on the first call after idling
                now = self._sample()
            elif now.boottime - prev.boottime < self._min_span:
                return rates_between(self._older, now, names) if self._older else {}
            self._older = prev
            self._prev = now
            return rates_between(prev, now, names)


def live_json(reader: Reader, cfg: Config, rates: LiveRates, ifaces: Sequence[str] | None = None) -> dict[str, Any]:
    """Live rx/tx bit rates of the metered interfaces present on this machine."""
    names = resolve_ifaces(reader, ifaces)
    measured = rates.read(names)
    return {"at": iso(dt.datetime.now(cfg.tz)), "unit": "bit/s", "interfaces": [
        {"name": n, "rx_bps": round(r.rx_bps * 8), "tx_bps": round(r.tx_bps * 8)}
        for n, r in sorted(measured.items())]}
