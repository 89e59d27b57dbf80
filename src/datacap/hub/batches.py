"""Batches for the hub, formed from the store's outbox (:mod:`datacap.store.outbox`).

Which connection writes here, and why: the sender thread has its own read-write connection to the
store and writes only the hub's bookkeeping (``hub_batches``, ``hub_cursor``, taking rows out of the
outbox). SQLite serialises it with the daemon's writer by the file lock (``BEGIN IMMEDIATE``, busy
timeout), so each of its transactions is atomic on its own. Sharing the writer's connection instead
would let another plugin's ``with conn:`` on the metering thread commit half of a sender transaction.
Its transactions are a few statements, with no network I/O and no encoding inside: the metering
thread waits for one at most milliseconds, never for the hub.

Crash safety, at any instant: the deltas reach the outbox in the metering flush's own transaction;
a batch is numbered and stored in the transaction that takes its rows out of the outbox; it is sent
only once stored, and marked acknowledged only after the hub said so. A crash between any two steps
resends a stored batch, which the hub counts once (idempotent by device and seq).
"""

from __future__ import annotations

import gzip
import json
import logging
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datacap.errors import StoreError
from datacap.hub import protocol
from datacap.store.db import open_write

log = logging.getLogger("datacap.hub")

COMPACT_AT = 20_000          # outbox rows: merge deltas per key beyond this many
COARSEN_AT = 200_000         # still this many keys after merging: older 5-minute deltas go hourly
COARSEN_AFTER = 7 * 86_400   # ... those older than a week (totals stay exact, only detail is lost)
KEEP_ACKED = 2 * 86_400      # acknowledged batches are kept this long, to resend if the hub lost them
KEEP_ACKED_MAX = 3_000       # ... and at most this many (a device pushing every few seconds)
EVENTS_PER_BATCH = 500       # calibrations, texts, alerts: at most this many of each per batch


@dataclass(frozen=True, slots=True)
class StoredBatch:
    seq: int
    body: bytes              # the exact gzip body sent, every time it is sent
    usage_rows: int
    attrib_rows: int


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The device's state put in every batch (computed by the caller at forming time)."""

    host: protocol.Host
    health: protocol.Health
    cards: list[protocol.Card]


class BatchStore:
    """Forms, stores and acknowledges batches. Used by the sender thread only."""

    def __init__(self, db_path: Path, device: str) -> None:
        self.device = device
        self.conn = open_write(db_path)

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def _txn(self) -> Iterator[sqlite3.Connection]:
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StoreError(f"hub outbox: cannot start a write: {exc}") from exc
        try:
            yield self.conn
            self.conn.execute("COMMIT")
        except BaseException as exc:
            self.conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"hub outbox: write failed, nothing was written: {exc}") from exc
            raise

    # -- reading ------------------------------------------------------------------------------------
    def next_unacked(self) -> StoredBatch | None:
        row = self.conn.execute("SELECT seq, body, usage_rows, attrib_rows FROM hub_batches "
                                "WHERE acked_at IS NULL ORDER BY seq LIMIT 1").fetchone()
        return None if row is None else StoredBatch(row[0], bytes(row[1]), row[2], row[3])

    def pending(self) -> tuple[int, int, int]:
        """(unacknowledged batches, usage rows, attribution rows) still owed to the hub."""
        batches = self.conn.execute("SELECT count(*) FROM hub_batches WHERE acked_at IS NULL").fetchone()[0]
        usage = self.conn.execute("SELECT count(*) FROM hub_outbox_usage").fetchone()[0]
        attrib = self.conn.execute("SELECT count(*) FROM hub_outbox_attrib").fetchone()[0]
        return int(batches), int(usage), int(attrib)

    def acked(self) -> int:
        return self._cursor(self.conn, "acked")

    def last_seq(self) -> int:
        return self._cursor(self.conn, "seq")

    # -- forming ------------------------------------------------------------------------------------
    def form(self, snapshot: Callable[[int], Snapshot], now: float | None = None) -> StoredBatch:
        """Number, store and return the next batch: the oldest outbox rows (at most the protocol's
        limits, split further until it fits 1 MiB compressed), new events, the device's state.
        ``snapshot(pending_batches)`` gives host, health and cards."""
        now = time.time() if now is None else now
        self.compact(now)
        limit = protocol.MAX_USAGE_ROWS
        while True:
            usage = self.conn.execute("SELECT id, start, iface, card, rx, tx, rxp, txp FROM hub_outbox_usage "
                                      "ORDER BY id LIMIT ?", (limit,)).fetchall()
            attrib = self.conn.execute("SELECT id, start, iface, card, kind, name, rx, tx FROM hub_outbox_attrib "
                                       "ORDER BY id LIMIT ?", (limit,)).fetchall()
            events = self._events(limit)
            seq = self.last_seq() + 1
            unacked, owed_usage, owed_attrib = self.pending()
            rest = max(owed_usage - len(usage), owed_attrib - len(attrib), 0)
            state = snapshot(unacked + 1 + -(-rest // protocol.MAX_USAGE_ROWS))
            doc = {
                "v": protocol.VERSION, "device": self.device, "seq": seq, "created": protocol.iso(now),
                "host": {**state.host.model_dump(mode="json"), "interfaces": self._interfaces({r[2] for r in usage})},
                "health": state.health.model_dump(mode="json"),
                "cards": [c.model_dump(mode="json") for c in state.cards],
                "usage": [{"start": r[1], "interface": r[2], "card": r[3] or None, "rx": r[4], "tx": r[5],
                           "rx_packets": r[6], "tx_packets": r[7]} for r in usage],
                "attribution": [{"start": r[1], "interface": r[2], "kind": r[4], "name": r[5], "rx": r[6],
                                 "tx": r[7], "card": r[3] or None} for r in attrib],
                **{kind: docs for kind, (docs, _) in events.items()},
            }
            body = protocol.encode(doc)
            if len(body) <= protocol.MAX_COMPRESSED_BYTES or limit == 1:
                break
            limit = max(1, limit // 2)
        first = min([r[1] for r in usage] + [r[1] for r in attrib], default=None)
        with self._txn() as conn:
            if usage:
                conn.execute("DELETE FROM hub_outbox_usage WHERE id <= ?", (usage[-1][0],))
            if attrib:
                conn.execute("DELETE FROM hub_outbox_attrib WHERE id <= ?", (attrib[-1][0],))
            for kind, (docs, cursor) in events.items():
                if docs:
                    self._set_cursor(conn, kind, cursor)
            conn.execute("INSERT INTO hub_batches (seq, device, created, body, usage_rows, attrib_rows, "
                         "first_start) VALUES (?, ?, ?, ?, ?, ?, ?)",
                         (seq, self.device, int(now), body, len(usage), len(attrib), first))
            self._set_cursor(conn, "seq", seq)
        return StoredBatch(seq, body, len(usage), len(attrib))

    def _interfaces(self, names: set[str]) -> list[dict[str, Any]]:
        """The state of the interfaces this batch's rows name (the hub upserts it)."""
        rows = self.conn.execute("SELECT name, link_type, first_seen FROM interfaces ORDER BY name")
        return [{"name": n, "link_type": t, "first_seen": max(0, f)} for n, t, f in rows if n in names]

    def _events(self, limit: int) -> dict[str, tuple[list[dict[str, Any]], int]]:
        """New calibrations, carrier texts read and alert events since the last batch, with the
        cursor each would advance to."""
        n = min(limit, EVENTS_PER_BATCH)
        out: dict[str, tuple[list[dict[str, Any]], int]] = {}
        cal = self._rows("SELECT id, card, bucket, at, used_bytes, source, local_used_bytes, created, raw "
                         "FROM calibrations WHERE id > ? ORDER BY id LIMIT ?", "calibrations", n)
        out["calibrations"] = ([{"id": r[0], "card": r[1], "bucket": r[2], "at": protocol.iso(r[3]),
                                 "used_bytes": r[4], "source": r[5], "local_used_bytes": r[6],
                                 "created": protocol.iso(r[7]), "raw": r[8]} for r in cal],
                               cal[-1][0] if cal else 0)
        texts = self._rows("SELECT id, at, peer, text, card FROM carrier_log WHERE direction = 'received' "
                           "AND id > ? ORDER BY id LIMIT ?", "texts", n)
        out["texts"] = ([{"id": r[0], "at": protocol.iso(r[1]), "sender": r[2], "text": r[3],
                          "card": r[4] or None} for r in texts], texts[-1][0] if texts else 0)
        alerts = self._rows("SELECT id, fired_at, card, rule_key, level, title, body FROM alert_event "
                            "WHERE id > ? ORDER BY id LIMIT ?", "alerts", n)
        out["alerts"] = ([{"id": r[0], "at": protocol.iso(r[1]), "card": r[2] or None, "rule": r[3],
                           "level": r[4], "message": f"{r[5]}\n{r[6]}" if r[6] else r[5]} for r in alerts],
                         alerts[-1][0] if alerts else 0)
        return out

    def _rows(self, sql: str, cursor: str, limit: int) -> list[Any]:
        try:
            return self.conn.execute(sql, (self._cursor(self.conn, cursor), limit)).fetchall()
        except sqlite3.OperationalError:  # a feature's table not created in this store
            return []

    # -- acknowledgements ------------------------------------------------------------------------
    def ack(self, acked: int, now: float | None = None) -> None:
        """The hub holds every batch up to ``acked``: mark them, forget old acknowledged ones."""
        now = time.time() if now is None else now
        with self._txn() as conn:
            conn.execute("UPDATE hub_batches SET acked_at = ? WHERE seq <= ? AND acked_at IS NULL",
                         (int(now), acked))
            if acked > self._cursor(conn, "acked"):
                self._set_cursor(conn, "acked", acked)
            conn.execute("DELETE FROM hub_batches WHERE acked_at IS NOT NULL AND (acked_at < ? OR seq <= ?)",
                         (int(now) - KEEP_ACKED, acked - KEEP_ACKED_MAX))

    def attempt_failed(self, seq: int, error: str) -> None:
        with self._txn() as conn:
            conn.execute("UPDATE hub_batches SET attempts = attempts + 1, last_error = ? WHERE seq = ?",
                         (error[:500], seq))

    def rewind(self, expected: int) -> bool:
        """The hub expects ``expected``: resend from there. True if this device still holds every
        batch from ``expected`` on; else the batches it holds are renumbered from ``expected`` (the
        ones it no longer holds are lost to the hub, and the caller says so)."""
        with self._txn() as conn:
            seqs = [r[0] for r in conn.execute("SELECT seq FROM hub_batches WHERE seq >= ? ORDER BY seq",
                                               (expected,))]
            last = self._cursor(conn, "seq")
            if seqs and seqs[0] == expected and len(seqs) == last - expected + 1:
                conn.execute("UPDATE hub_batches SET acked_at = NULL WHERE seq >= ?", (expected,))
                self._set_cursor(conn, "acked", expected - 1)
                return True
            self._renumber(conn, expected)
            return False

    def jump(self, acked: int) -> None:
        """The hub has acknowledged more than this device ever sent (its store was replaced):
        number the unacknowledged batches after the hub's ``acked``."""
        with self._txn() as conn:
            self._renumber(conn, acked + 1)

    def _renumber(self, conn: sqlite3.Connection, first: int) -> None:
        rows = conn.execute("SELECT seq, body FROM hub_batches WHERE acked_at IS NULL ORDER BY seq").fetchall()
        conn.execute("DELETE FROM hub_batches WHERE acked_at IS NULL OR seq >= ?", (first,))
        for offset, (_, body) in enumerate(rows):
            doc = json.loads(gzip.decompress(bytes(body)))
            doc["seq"] = first + offset
            starts = [u["start"] for u in doc["usage"]] + [a["start"] for a in doc["attribution"]]
            conn.execute("INSERT INTO hub_batches (seq, device, created, body, usage_rows, attrib_rows, first_start) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?)",
                         (first + offset, doc["device"], _epoch_of(doc["created"]), protocol.encode(doc),
                          len(doc["usage"]), len(doc["attribution"]), min(starts, default=None)))
        self._set_cursor(conn, "seq", first + len(rows) - 1)
        self._set_cursor(conn, "acked", first - 1)

    # -- compaction -------------------------------------------------------------------------------
    def compact(self, now: float) -> None:
        """Merge the outbox's deltas per key once it holds more than COMPACT_AT rows (a long outage);
        if even the merged keys are too many, older 5-minute deltas are merged per hour. Sums are
        unchanged, so the hub's totals stay exact; rows keep their time order."""
        _, usage, attrib = self.pending()
        if usage > COMPACT_AT:
            self._merge("hub_outbox_usage", "iface, card", ("rx", "tx", "rxp", "txp"), now, usage)
        if attrib > COMPACT_AT:
            self._merge("hub_outbox_attrib", "iface, card, kind, name", ("rx", "tx"), now, attrib)

    def _merge(self, table: str, key: str, counts: tuple[str, ...], now: float, rows: int) -> None:
        keys = self.conn.execute(f"SELECT count(*) FROM (SELECT 1 FROM {table} GROUP BY start, {key})").fetchone()[0]
        old = int(now) - COARSEN_AFTER if keys > COARSEN_AT else 0
        start = "CASE WHEN start < :old THEN start - start % 3600 ELSE start END"
        with self._txn() as conn:
            top = conn.execute(f"SELECT max(id) FROM {table}").fetchone()[0]
            sums = ", ".join(f"sum({c})" for c in counts)
            conn.execute(f"INSERT INTO {table} (start, {key}, {', '.join(counts)}) SELECT {start} AS s, {key}, "
                         f"{sums} FROM {table} WHERE id <= :top GROUP BY s, {key} ORDER BY s, {key}",
                         {"old": old, "top": top})
            conn.execute(f"DELETE FROM {table} WHERE id <= ?", (top,))
        after = self.conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        log.info("hub outbox: %s compacted from %d to %d rows", table, rows, after)

    # -- cursors ----------------------------------------------------------------------------------
    @staticmethod
    def _cursor(conn: sqlite3.Connection, name: str) -> int:
        row = conn.execute("SELECT value FROM hub_cursor WHERE name = ?", (name,)).fetchone()
        return 0 if row is None else int(row[0])

    @staticmethod
    def _set_cursor(conn: sqlite3.Connection, name: str, value: int) -> None:
        conn.execute("INSERT INTO hub_cursor VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                     (name, value))


def _epoch_of(iso: str) -> int:
    import datetime as dt

    return int(dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp())
