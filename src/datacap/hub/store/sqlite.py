"""The hub on SQLite: one file, nothing to install, for a handful of devices.

One writer connection behind a lock (SQLite has one writer anyway), a read-only connection per
thread (WAL: readers never wait for the writer). ``synchronous = FULL``: a batch the hub acknowledged
survives a power cut, since the device will not send it again.

Group commit: the fsync at each commit would cap the hub at one batch per fsync, so batches that
arrive while a transaction is being written wait and go together into the next one, each inside its
own SAVEPOINT (one bad batch rolls back alone), and each is acknowledged only after that commit.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from datacap.errors import StoreError
from datacap.hub.protocol import Batch
from datacap.hub.store.base import Cursor, IngestJob, IngestOutcome, SqlHubStore
from datacap.store.schema import _statements

SCHEMA = """
CREATE TABLE devices (
    device TEXT PRIMARY KEY, grp TEXT NOT NULL DEFAULT '', token_sha256 TEXT NOT NULL UNIQUE,
    created INTEGER NOT NULL, revoked_at INTEGER, last_seq INTEGER NOT NULL DEFAULT 0, last_seen INTEGER,
    hostname TEXT, version TEXT, timezone TEXT, health TEXT
);
CREATE TABLE cards (
    device TEXT NOT NULL, card TEXT NOT NULL, label TEXT, iccid TEXT, carrier TEXT,
    interfaces TEXT NOT NULL, plan TEXT NOT NULL, updated INTEGER NOT NULL, dirty_since INTEGER,
    PRIMARY KEY (device, card)
);
CREATE INDEX cards_carrier ON cards (carrier);
CREATE TABLE links (
    device TEXT NOT NULL, interface TEXT NOT NULL, first_start INTEGER NOT NULL,
    PRIMARY KEY (device, interface)
) WITHOUT ROWID;
-- 5-minute deltas added up; card '' = not stamped (charged by the cards' interfaces).
CREATE TABLE usage (
    device TEXT NOT NULL, card TEXT NOT NULL, interface TEXT NOT NULL, start INTEGER NOT NULL,
    rx INTEGER NOT NULL, tx INTEGER NOT NULL,
    PRIMARY KEY (device, card, interface, start)
) WITHOUT ROWID;
CREATE INDEX usage_device_start ON usage (device, start);
CREATE TABLE attribution (
    device TEXT NOT NULL, card TEXT NOT NULL, interface TEXT NOT NULL, start INTEGER NOT NULL,
    kind TEXT NOT NULL, name TEXT NOT NULL, rx INTEGER NOT NULL, tx INTEGER NOT NULL,
    PRIMARY KEY (device, card, interface, start, kind, name)
) WITHOUT ROWID;
CREATE TABLE calibrations (
    device TEXT NOT NULL, card TEXT NOT NULL, id INTEGER NOT NULL, bucket TEXT, at INTEGER NOT NULL,
    used_bytes INTEGER NOT NULL, local_used_bytes INTEGER, source TEXT NOT NULL, extra TEXT NOT NULL,
    PRIMARY KEY (device, card, id)
);
CREATE TABLE texts (
    device TEXT NOT NULL, card TEXT NOT NULL, id INTEGER NOT NULL, at INTEGER NOT NULL, sender TEXT NOT NULL,
    body TEXT NOT NULL, PRIMARY KEY (device, card, id)
);
CREATE TABLE alerts (
    device TEXT NOT NULL, card TEXT NOT NULL, id INTEGER NOT NULL, at INTEGER NOT NULL, rule TEXT NOT NULL,
    level TEXT NOT NULL, message TEXT NOT NULL, PRIMARY KEY (device, card, id)
);
-- Each card's last computed status (the fleet table reads this; a card's page computes afresh).
CREATE TABLE card_status (
    device TEXT NOT NULL, card TEXT NOT NULL, computed_at INTEGER NOT NULL, state TEXT NOT NULL,
    used_bytes INTEGER NOT NULL, quota_bytes INTEGER, remaining_bytes INTEGER, remaining_fraction REAL,
    exhausts_at INTEGER, cycle_end INTEGER, throttled INTEGER NOT NULL, overage_bytes INTEGER NOT NULL,
    status TEXT NOT NULL,
    PRIMARY KEY (device, card)
);
"""

MIGRATIONS: list[tuple[str, str]] = [("hub_sqlite_0001_core", SCHEMA)]
GROUP_MAX = 256  # batches per transaction at most


class _Slot:
    __slots__ = ("done", "error", "job", "outcome")

    def __init__(self, job: IngestJob) -> None:
        self.job = job
        self.done = threading.Event()
        self.outcome: IngestOutcome | None = None
        self.error: BaseException | None = None


class SqliteHubStore(SqlHubStore):
    backend = "sqlite"

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self._lock = threading.Lock()
        self._local = threading.local()
        self._writer: sqlite3.Connection | None = None
        self._readers: list[sqlite3.Connection] = []
        self._pending: list[_Slot] = []
        self._group_lock = threading.Lock()
        self._leading = False

    def ingest(self, device: str, batch: Batch, now: int, token_sha256: str | None = None) -> IngestOutcome:
        slot = _Slot(self._prepare(device, batch, now, token_sha256))
        with self._group_lock:
            self._pending.append(slot)
            lead = not self._leading
            self._leading = True
        if lead:  # the first to arrive writes for everyone queued meanwhile, until nobody is waiting
            self._lead()
        slot.done.wait()
        if slot.error is not None:
            raise slot.error
        assert slot.outcome is not None
        return slot.outcome

    def _lead(self) -> None:
        while True:
            with self._group_lock:
                group, self._pending = self._pending[:GROUP_MAX], self._pending[GROUP_MAX:]
                if not group:
                    self._leading = False
                    return
            try:
                with self._write() as cur:
                    for slot in group:
                        cur.execute("SAVEPOINT batch")
                        try:
                            slot.outcome = self._ingest_in(cur, slot.job)
                        except Exception as exc:  # this batch only; the others still commit
                            cur.execute("ROLLBACK TO batch")
                            slot.error = exc
                        cur.execute("RELEASE batch")
            except BaseException as exc:  # the commit itself failed: nothing of the group is applied
                for slot in group:
                    slot.outcome, slot.error = None, slot.error or exc
            for slot in group:
                if slot.outcome is not None:
                    self._committed(slot.job, slot.outcome)
                slot.done.set()

    def _connect(self, readonly: bool) -> sqlite3.Connection:
        try:
            if readonly:
                conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, isolation_level=None,
                                       check_same_thread=False, timeout=30)
                conn.execute("PRAGMA query_only = ON")
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = FULL")
        except sqlite3.Error as exc:
            raise StoreError(f"hub database {self.path}: {exc}") from None
        return conn

    def _writer_conn(self) -> sqlite3.Connection:
        if self._writer is None:
            self._writer = self._connect(readonly=False)
        return self._writer

    @contextmanager
    def _write(self) -> Iterator[Cursor]:
        with self._lock:
            conn = self._writer_conn()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn.cursor()
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    @contextmanager
    def _read(self) -> Iterator[Cursor]:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect(readonly=True)
            with self._lock:
                self._readers.append(conn)
        conn.execute("BEGIN")  # one snapshot for every statement of the read
        try:
            yield conn.cursor()
        finally:
            conn.execute("COMMIT")

    def migrate(self) -> list[str]:
        with self._lock:
            conn = self._writer_conn()
            conn.execute("CREATE TABLE IF NOT EXISTS hub_migrations"
                         " (name TEXT PRIMARY KEY, applied_at INTEGER NOT NULL)")
            done = {r[0] for r in conn.execute("SELECT name FROM hub_migrations")}
            unknown = done - {n for n, _ in MIGRATIONS}
            if unknown:
                raise StoreError(f"the hub database was written by a newer datacap ({sorted(unknown)}); upgrade")
            applied = []
            for name, sql in MIGRATIONS:
                if name in done:
                    continue
                conn.execute("BEGIN IMMEDIATE")
                try:
                    for statement in _statements(sql):
                        conn.execute(statement)
                    conn.execute("INSERT INTO hub_migrations VALUES (?, ?)", (name, int(time.time())))
                except sqlite3.Error as exc:
                    conn.execute("ROLLBACK")
                    raise StoreError(f"hub migration {name} failed: {exc}") from None
                conn.execute("COMMIT")
                applied.append(name)
            return applied

    def close(self) -> None:
        with self._lock:
            for conn in [*self._readers, *([self._writer] if self._writer else [])]:
                conn.close()
            self._readers.clear()
            self._writer = None

    def execute_raw(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        """For tests and tools: one read statement."""
        with self._read() as cur:
            cur.execute(sql, params)
            return cur.fetchall()
