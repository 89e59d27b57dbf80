"""The hub on PostgreSQL (psycopg 3): for fleets.

``usage`` is partitioned by month of ``start`` (declarative range partitioning); a month's
partition is created the first time a batch brings a row for it. Every primary key starts with
``device`` and every per-card fact with ``(device, card)``: the tables can be distributed by device
with Citus (``create_distributed_table('usage', 'device')``), which keeps every card's rows, its
status and its events on one node (see docs/scale.md).

A device's batches are serialised by ``SELECT … FOR UPDATE`` on its row: two copies of one batch
racing each other cannot both apply.
"""

from __future__ import annotations

import datetime as dt
import queue
import re
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import errors as pgerrors

from datacap.errors import StoreError
from datacap.hub.protocol import Batch
from datacap.hub.store.base import Cursor, SqlHubStore
from datacap.timeutil import UTC

MIGRATIONS: list[tuple[str, str]] = [("hub_pg_0001_core", """
CREATE TABLE devices (
    device TEXT PRIMARY KEY, grp TEXT NOT NULL DEFAULT '', token_sha256 TEXT NOT NULL UNIQUE,
    created BIGINT NOT NULL, revoked_at BIGINT, last_seq BIGINT NOT NULL DEFAULT 0, last_seen BIGINT,
    hostname TEXT, version TEXT, timezone TEXT, health TEXT
);
CREATE TABLE cards (
    device TEXT NOT NULL, card TEXT NOT NULL, label TEXT, iccid TEXT, carrier TEXT,
    interfaces TEXT NOT NULL, plan TEXT NOT NULL, updated BIGINT NOT NULL, dirty_since BIGINT,
    PRIMARY KEY (device, card)
);
CREATE INDEX cards_carrier ON cards (carrier);
CREATE INDEX cards_dirty ON cards (dirty_since) WHERE dirty_since IS NOT NULL;
CREATE TABLE links (
    device TEXT NOT NULL, interface TEXT NOT NULL, first_start BIGINT NOT NULL,
    PRIMARY KEY (device, interface)
);
CREATE TABLE usage (
    device TEXT NOT NULL, card TEXT NOT NULL, interface TEXT NOT NULL, start BIGINT NOT NULL,
    rx BIGINT NOT NULL, tx BIGINT NOT NULL,
    PRIMARY KEY (device, card, interface, start)
) PARTITION BY RANGE (start);
CREATE INDEX usage_device_start ON usage (device, start);
CREATE TABLE attribution (
    device TEXT NOT NULL, card TEXT NOT NULL, interface TEXT NOT NULL, start BIGINT NOT NULL,
    kind TEXT NOT NULL, name TEXT NOT NULL, rx BIGINT NOT NULL, tx BIGINT NOT NULL,
    PRIMARY KEY (device, card, interface, start, kind, name)
);
CREATE TABLE calibrations (
    device TEXT NOT NULL, card TEXT NOT NULL, id BIGINT NOT NULL, bucket TEXT, at BIGINT NOT NULL,
    used_bytes BIGINT NOT NULL, local_used_bytes BIGINT, source TEXT NOT NULL, extra TEXT NOT NULL,
    PRIMARY KEY (device, card, id)
);
CREATE TABLE texts (
    device TEXT NOT NULL, card TEXT NOT NULL, id BIGINT NOT NULL, at BIGINT NOT NULL, sender TEXT NOT NULL,
    body TEXT NOT NULL, PRIMARY KEY (device, card, id)
);
CREATE TABLE alerts (
    device TEXT NOT NULL, card TEXT NOT NULL, id BIGINT NOT NULL, at BIGINT NOT NULL, rule TEXT NOT NULL,
    level TEXT NOT NULL, message TEXT NOT NULL, PRIMARY KEY (device, card, id)
);
CREATE TABLE card_status (
    device TEXT NOT NULL, card TEXT NOT NULL, computed_at BIGINT NOT NULL, state TEXT NOT NULL,
    used_bytes BIGINT NOT NULL, quota_bytes BIGINT, remaining_bytes BIGINT, remaining_fraction DOUBLE PRECISION,
    exhausts_at BIGINT, cycle_end BIGINT, throttled INTEGER NOT NULL, overage_bytes BIGINT NOT NULL,
    status TEXT NOT NULL,
    PRIMARY KEY (device, card)
);
""")]

_PLACEHOLDER = re.compile(r"\?")


def month_bounds(start: int) -> tuple[int, int, str]:
    """The UTC month holding ``start``: [first, next first) as epochs, and its partition's name."""
    t = dt.datetime.fromtimestamp(start, UTC)
    first = dt.datetime(t.year, t.month, 1, tzinfo=UTC)
    nxt = dt.datetime(t.year + (t.month == 12), t.month % 12 + 1, 1, tzinfo=UTC)
    return int(first.timestamp()), int(nxt.timestamp()), f"usage_{t.year:04d}_{t.month:02d}"


class _PgCursor:
    """A psycopg cursor taking the shared SQL's ``?`` placeholders."""

    def __init__(self, cur: psycopg.Cursor[Any]) -> None:
        self._cur = cur

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._cur.execute(_PLACEHOLDER.sub("%s", sql), params)

    def executemany(self, sql: str, params: Sequence[Sequence[Any]]) -> Any:
        return self._cur.executemany(_PLACEHOLDER.sub("%s", sql), params)

    def fetchone(self) -> Any:
        return self._cur.fetchone()

    def fetchall(self) -> list[Any]:
        return self._cur.fetchall()


class PostgresHubStore(SqlHubStore):
    backend = "postgresql"
    lock_suffix = " FOR UPDATE"
    least = "LEAST"

    def __init__(self, url: str, pool_size: int = 16) -> None:
        super().__init__()
        self.url = url
        self._pool: queue.LifoQueue[psycopg.Connection[Any]] = queue.LifoQueue()
        self._size = pool_size
        self._opened = 0
        self._lock = threading.Lock()
        self._partitions: set[str] = set()

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            return psycopg.connect(self.url, autocommit=False, connect_timeout=10)
        except psycopg.Error as exc:
            raise StoreError(f"hub database: cannot connect to PostgreSQL: {str(exc).strip()}") from None

    @contextmanager
    def _conn(self) -> Iterator[psycopg.Connection[Any]]:
        conn: psycopg.Connection[Any] | None = None
        try:
            conn = self._pool.get_nowait()
        except queue.Empty:
            with self._lock:
                grow = self._opened < self._size
                if grow:
                    self._opened += 1
            if grow:
                try:
                    conn = self._connect()
                except BaseException:
                    with self._lock:
                        self._opened -= 1
                    raise
            else:
                conn = self._pool.get(timeout=60)
        healthy = True
        try:
            yield conn
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            healthy = False  # the server went away or restarted: this connection is done
            raise StoreError(f"hub database: {str(exc).strip()}") from None
        finally:
            if healthy and not conn.closed:
                self._pool.put(conn)
            else:
                conn.close()
                with self._lock:
                    self._opened -= 1

    @contextmanager
    def _write(self) -> Iterator[Cursor]:
        with self._conn() as conn, conn.transaction(), conn.cursor() as cur:
            yield _PgCursor(cur)

    @contextmanager
    def _read(self) -> Iterator[Cursor]:
        with self._conn() as conn, conn.transaction(), conn.cursor() as cur:
            cur.execute("SET TRANSACTION READ ONLY")
            yield _PgCursor(cur)

    def _before_ingest(self, batch: Batch) -> None:
        months = {month_bounds(u.start) for u in batch.usage}
        for lo, hi, name in sorted(months):
            if name not in self._partitions:
                self.ensure_partition(lo, hi, name)

    def ensure_partition(self, lo: int, hi: int, name: str) -> None:
        """Create the month's partition of ``usage`` unless it exists (another process may race us)."""
        with self._conn() as conn:
            try:
                with conn.transaction():
                    conn.execute(f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF usage"  # name: digits only
                                 f" FOR VALUES FROM ({lo}) TO ({hi})")
            except (pgerrors.DuplicateTable, pgerrors.UniqueViolation):
                pass  # created by a concurrent batch
        self._partitions.add(name)

    def partitions(self) -> list[str]:
        with self._read() as cur:
            cur.execute("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                        " JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'usage' ORDER BY 1")
            return [r[0] for r in cur.fetchall()]

    def migrate(self) -> list[str]:
        with self._conn() as conn:
            with conn.transaction():
                # One migrating process at a time (several hub processes may start together).
                conn.execute("SELECT pg_advisory_xact_lock(1414)")
                conn.execute("CREATE TABLE IF NOT EXISTS hub_migrations"
                             " (name TEXT PRIMARY KEY, applied_at BIGINT NOT NULL)")
                done = {r[0] for r in conn.execute("SELECT name FROM hub_migrations").fetchall()}
            unknown = done - {n for n, _ in MIGRATIONS}
            if unknown:
                raise StoreError(f"the hub database was written by a newer datacap ({sorted(unknown)}); upgrade")
            applied = []
            for name, sql in MIGRATIONS:
                if name in done:
                    continue
                try:
                    with conn.transaction():
                        conn.execute("SELECT pg_advisory_xact_lock(1414)")
                        again = conn.execute("SELECT 1 FROM hub_migrations WHERE name = %s", (name,)).fetchone()
                        if again:
                            continue
                        conn.execute(sql)
                        conn.execute("INSERT INTO hub_migrations VALUES (%s, %s)", (name, int(time.time())))
                except psycopg.Error as exc:
                    raise StoreError(f"hub migration {name} failed: {str(exc).strip()}") from None
                applied.append(name)
            return applied

    def close(self) -> None:
        while True:
            try:
                self._pool.get_nowait().close()
            except queue.Empty:
                break
        with self._lock:
            self._opened = 0

    def execute_raw(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        with self._read() as cur:
            cur.execute(sql, params)
            return cur.fetchall()
