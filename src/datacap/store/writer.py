"""The single writer: every change to the store is one ``BEGIN IMMEDIATE`` transaction.

Deltas arrive per 5-minute bucket and are added to that bucket and to the local hour, day, week,
month and year holding it, so every view reads precomputed sums. Raw counters are written in the
same transaction as the deltas they produced: after a crash at any instant, the store holds either
both or neither, so no byte is lost or counted twice.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from datacap.errors import StoreError
from datacap.meter.delta import Reading
from datacap.model import AppIdentity, AttribDelta, ClientIdentity
from datacap.timeutil import RESOLUTIONS, UTC, bucket_end, bucket_start

_USAGE_UPSERT = """
INSERT INTO usage (res, iface_id, start, card, rx_bytes, tx_bytes, rx_packets, tx_packets)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (res, iface_id, start, card) DO UPDATE SET
    rx_bytes = rx_bytes + excluded.rx_bytes, tx_bytes = tx_bytes + excluded.tx_bytes,
    rx_packets = rx_packets + excluded.rx_packets, tx_packets = tx_packets + excluded.tx_packets"""
_ATTRIB_UPSERT = """
INSERT INTO attrib (res, start, iface_id, card, app_id, client_id, service_id, rx_bytes, tx_bytes, flows)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (res, start, iface_id, card, app_id, client_id, service_id) DO UPDATE SET
    rx_bytes = rx_bytes + excluded.rx_bytes, tx_bytes = tx_bytes + excluded.tx_bytes,
    flows = flows + excluded.flows"""


# Every write transaction bumps it: what a cache computed from the store is keyed by.
BUMP_GENERATION = ("INSERT INTO meta (key, value) VALUES ('generation', 1) "
                   "ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + 1")


@dataclass(frozen=True, slots=True)
class TrafficDelta:
    """Interface bytes used within one 5-minute bucket."""

    bucket: int
    interface: str
    rx_bytes: int
    tx_bytes: int
    rx_packets: int = 0
    tx_packets: int = 0
    card: str | None = None


@dataclass(frozen=True, slots=True)
class MeterEvent:
    at: int
    iface: str | None
    kind: str
    detail: str


class Rollups:
    """Maps a 5-minute bucket to the local start of every coarser bucket holding it, cached per day."""

    def __init__(self, tz: ZoneInfo, week_start: int = 0) -> None:
        self.tz = tz
        self.week_start = week_start
        self._day: tuple[int, int, tuple[int, int, int, int], int | None] | None = None

    def starts(self, bucket: int) -> tuple[tuple[str, int], ...]:
        day = self._day
        if day is None or not day[0] <= bucket < day[1]:
            day = self._day = self._load_day(bucket)
        _, _, coarse, offset = day
        if offset is None:  # a DST change happens this day: compute the local hour exactly
            hour = int(bucket_start("hour", dt.datetime.fromtimestamp(bucket, UTC), self.tz).timestamp())
        else:
            hour = bucket - (bucket + offset) % 3600
        return (("5min", bucket), ("hour", hour), ("day", coarse[0]), ("week", coarse[1]),
                ("month", coarse[2]), ("year", coarse[3]))

    def _load_day(self, bucket: int) -> tuple[int, int, tuple[int, int, int, int], int | None]:
        instant = dt.datetime.fromtimestamp(bucket, UTC)
        start = bucket_start("day", instant, self.tz)
        end = bucket_end("day", start, self.tz)
        coarse = tuple(int(bucket_start(res, instant, self.tz, self.week_start).timestamp())
                       for res in ("day", "week", "month", "year"))
        first = start.utcoffset()
        last = (end - dt.timedelta(seconds=1)).astimezone(self.tz).utcoffset()
        offset = int(first.total_seconds()) if first == last and first is not None else None
        return int(start.timestamp()), int(end.timestamp()), coarse, offset  # type: ignore[return-value]


class Writer:
    """Owns the store's only read-write connection. Thread-safe: one transaction at a time."""

    def __init__(self, conn: sqlite3.Connection, tz: ZoneInfo, week_start: int = 0) -> None:
        self.conn = conn
        self.rollups = Rollups(tz, week_start)
        self._lock = threading.Lock()
        self._ids: dict[tuple[str, object], int] = {}

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... COMMIT, or ROLLBACK on any error (then re-raised as StoreError)."""
        with self._lock:
            try:
                self.conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StoreError(f"cannot start a write: {exc}") from exc
            try:
                yield self.conn
                # Readers in other processes (the CLI's caches, the dashboard) see that something changed.
                self.conn.execute(BUMP_GENERATION)
                self.conn.execute("COMMIT")
            except BaseException as exc:
                self.conn.execute("ROLLBACK")
                self._ids.clear()  # ids inserted by the rolled-back transaction are gone
                if isinstance(exc, sqlite3.Error):
                    raise StoreError(f"write failed, nothing was written: {exc}") from exc
                raise

    def commit(self, traffic: Iterable[TrafficDelta] = (), attrib: Iterable[AttribDelta] = (),
               counters: dict[str, Reading] | None = None,
               events: Iterable[MeterEvent] = (), link_types: dict[str, str] | None = None,
               seen_at: int | None = None, imported: tuple[str, str, int] | None = None) -> None:
        """Write one batch atomically: deltas, rollups, the counters they came from, events."""
        with self.transaction() as conn:
            self._add_traffic(conn, traffic, seen_at)
            self._add_attrib(conn, attrib)
            for name, reading in (counters or {}).items():
                conn.execute("INSERT OR REPLACE INTO counters VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                             (name, reading.ifindex, reading.boot_id, reading.boottime, reading.wall,
                              reading.rx_bytes, reading.tx_bytes, reading.rx_packets, reading.tx_packets))
            for name, kind in (link_types or {}).items():
                self._iface_id(conn, name, seen_at or 0)
                conn.execute("UPDATE interfaces SET link_type = ? WHERE name = ?", (kind, name))
            conn.executemany("INSERT INTO events (at, iface, kind, detail) VALUES (?, ?, ?, ?)",
                             [(e.at, e.iface, e.kind, e.detail) for e in events])
            if imported:
                conn.execute("INSERT OR REPLACE INTO imports VALUES (?, ?, ?, strftime('%s','now'))", imported)

    def _add_traffic(self, conn: sqlite3.Connection, traffic: Iterable[TrafficDelta], seen_at: int | None) -> None:
        sums: dict[tuple[str, int, int, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
        seen: dict[int, tuple[int, int]] = {}
        for d in traffic:
            iface = self._iface_id(conn, d.interface, d.bucket)
            first, last = seen.get(iface, (d.bucket, d.bucket))
            seen[iface] = (min(first, d.bucket), max(last, d.bucket + 300))
            for res, start in self.rollups.starts(d.bucket):
                acc = sums[(res, iface, start, d.card or "")]
                acc[0] += d.rx_bytes
                acc[1] += d.tx_bytes
                acc[2] += d.rx_packets
                acc[3] += d.tx_packets
        conn.executemany(_USAGE_UPSERT, [(*key, *vals) for key, vals in sums.items()])
        for iface, (first, last) in seen.items():
            conn.execute("UPDATE interfaces SET first_seen = min(first_seen, ?), last_seen = max(last_seen, ?) "
                         "WHERE id = ?", (first, max(last, seen_at or 0), iface))

    def _add_attrib(self, conn: sqlite3.Connection, attrib: Iterable[AttribDelta]) -> None:
        sums: dict[tuple[object, ...], list[int]] = defaultdict(lambda: [0, 0, 0])
        for d in attrib:
            key = (self._iface_id(conn, d.interface, d.bucket), d.card or "", self._app_id(conn, d.app),
                   self._client_id(conn, d.client), self._service_id(conn, d.service))
            for res, start in self.rollups.starts(d.bucket):
                acc = sums[(res, start, *key)]
                acc[0] += d.rx_bytes
                acc[1] += d.tx_bytes
                acc[2] += d.flows
        conn.executemany(_ATTRIB_UPSERT, [(*key, *vals) for key, vals in sums.items()])

    def _iface_id(self, conn: sqlite3.Connection, name: str, seen: int) -> int:
        key = ("iface", name)
        if key not in self._ids:
            conn.execute("INSERT OR IGNORE INTO interfaces (name, first_seen, last_seen) VALUES (?, ?, ?)",
                         (name, seen, seen))
            self._ids[key] = conn.execute("SELECT id FROM interfaces WHERE name = ?", (name,)).fetchone()[0]
        return self._ids[key]

    def _app_id(self, conn: sqlite3.Connection, app: AppIdentity | None) -> int:
        if app is None:
            return 0
        values = (app.name, app.exe or "", app.unit or "", app.user or "")
        return self._dim(conn, "apps", ("name", "exe", "unit", "user"), values)

    def _client_id(self, conn: sqlite3.Connection, client: ClientIdentity | None) -> int:
        if client is None:
            return 0
        ident = self._dim(conn, "clients", ("ip", "mac"), (client.ip, client.mac or ""))
        if client.hostname:
            conn.execute("UPDATE clients SET hostname = ? WHERE id = ? AND hostname != ?",
                         (client.hostname, ident, client.hostname))
        return ident

    def _service_id(self, conn: sqlite3.Connection, service: str | None) -> int:
        return 0 if not service else self._dim(conn, "services", ("name",), (service,))

    def _dim(self, conn: sqlite3.Connection, table: str, cols: tuple[str, ...], values: tuple[str, ...]) -> int:
        key = (table, values)
        if key not in self._ids:
            where = " AND ".join(f"{c} = ?" for c in cols)
            conn.execute(f"INSERT OR IGNORE INTO {table} ({', '.join(cols)}) VALUES "
                         f"({', '.join('?' * len(cols))})", values)
            self._ids[key] = conn.execute(f"SELECT id FROM {table} WHERE {where}", values).fetchone()[0]
        return self._ids[key]

    def set_meta(self, key: str, value: str | None) -> None:
        """Set (or, with None, remove) one of the store's own facts, read back by ``Reader.meta``."""
        with self.transaction() as conn:
            if value is None:
                conn.execute("DELETE FROM meta WHERE key = ?", (key,))
            else:
                conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def apply_retention(self, now: int, keep: dict[str, int | None]) -> int:
        """Delete buckets older than each resolution's retention. Returns the rows deleted."""
        deleted = 0
        with self.transaction() as conn:
            for res in RESOLUTIONS:
                seconds = keep.get(res)
                if seconds is None:
                    continue
                for table in ("usage", "attrib"):
                    cur = conn.execute(f"DELETE FROM {table} WHERE res = ? AND start < ?", (res, now - seconds))
                    deleted += cur.rowcount
                # Readers use the fine buckets from here on and the coarser ones before.
                conn.execute("INSERT INTO meta VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = "
                             "max(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER))",
                             (f"complete_since_{res}", str(now - seconds)))
        return deleted
