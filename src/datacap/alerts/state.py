"""Alert state, events, deliveries and enforcement records in the datacap SQLite store.

The connection is the integrator's (single writer). Every write is one `BEGIN IMMEDIATE` transaction,
so a crash leaves either the whole firing (state + event + its pending deliveries) or none of it:
a restart neither loses nor repeats an alert. Times are UTC epoch seconds.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from datacap.alerts.rules import Decision, Firing, StoredState
from datacap.errors import StoreBusy, StoreError

ALERTS_MIGRATION = ("0200_alerts", """
CREATE TABLE alert_state (
    rule_key   TEXT NOT NULL,
    card       TEXT NOT NULL,
    subject    TEXT NOT NULL DEFAULT '',
    period     TEXT NOT NULL,
    status     TEXT NOT NULL CHECK (status IN ('fired', 'cleared')),
    level      TEXT NOT NULL,
    fired_at   INTEGER,
    cleared_at INTEGER,
    PRIMARY KEY (rule_key, card, subject)
);
CREATE TABLE alert_event (
    id            INTEGER PRIMARY KEY,
    rule_key      TEXT NOT NULL,
    card          TEXT NOT NULL,
    subject       TEXT NOT NULL,
    period        TEXT NOT NULL,
    kind          TEXT NOT NULL,
    level         TEXT NOT NULL,
    fired_at      INTEGER NOT NULL,
    deliver_after INTEGER NOT NULL,
    title         TEXT NOT NULL,
    body          TEXT NOT NULL,
    figures       TEXT NOT NULL,
    action        TEXT
);
CREATE INDEX alert_event_fired ON alert_event (fired_at);
CREATE TABLE alert_delivery (
    id              INTEGER PRIMARY KEY,
    event_id        INTEGER NOT NULL REFERENCES alert_event (id) ON DELETE CASCADE,
    channel         TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    delivered_at    INTEGER,
    last_error      TEXT,
    UNIQUE (event_id, channel)
);
CREATE INDEX alert_delivery_due ON alert_delivery (status, next_attempt_at);
CREATE TABLE alert_attempt (
    id          INTEGER PRIMARY KEY,
    delivery_id INTEGER NOT NULL REFERENCES alert_delivery (id) ON DELETE CASCADE,
    at          INTEGER NOT NULL,
    ok          INTEGER NOT NULL,
    error       TEXT
);
CREATE TABLE enforcement (
    card      TEXT PRIMARY KEY,
    interface TEXT NOT NULL,
    action    TEXT NOT NULL CHECK (action IN ('block', 'throttle')),
    rate_bps  INTEGER,
    rule_key  TEXT,
    since     INTEGER NOT NULL,
    detail    TEXT NOT NULL DEFAULT '{}'
);
""")


@dataclass(frozen=True, slots=True)
class DueDelivery:
    id: int
    event_id: int
    channel: str
    attempts: int
    title: str
    body: str
    kind: str


@dataclass(frozen=True, slots=True)
class EnforcementRecord:
    card: str
    interface: str
    action: str  # "block" | "throttle"
    rate_bps: int | None
    rule_key: str | None
    since: int
    detail: Mapping[str, Any]


class AlertStore:
    """Reads and writes the alert tables over the integrator's connection."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        try:
            if self.conn.in_transaction:
                # Committing or joining a caller's open transaction would break its atomicity.
                raise StoreError("alerts: the store connection is already inside a transaction")
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as err:
            if "locked" in str(err) or "busy" in str(err):
                raise StoreBusy(f"alerts: the store is locked by another writer ({err})") from None
            raise StoreError(f"alerts: cannot start a write: {err}") from None
        try:
            yield self.conn
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise

    def _read(self, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
        try:
            cur = self.conn.execute(sql, args)
        except sqlite3.OperationalError as err:
            raise StoreError(f"alerts: cannot read the store ({err}); is migration 0200_alerts applied?") \
                from None
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]

    # ------------------------------------------------------------ state

    def states(self) -> dict[tuple[str, str, str], StoredState]:
        rows = self._read("SELECT rule_key, card, subject, period, status, fired_at, cleared_at"
                          " FROM alert_state")
        return {(r["rule_key"], r["card"], r["subject"]): StoredState(**r) for r in rows}

    def settle(self, plan: Callable[[dict[tuple[str, str, str], StoredState]], Decision],
               stage: Callable[[Firing], tuple[int, tuple[str, ...]]], now: int) -> Decision:
        """Decide and record in one write transaction, so two processes (the daemon and a cron'd
        `alerts check`) can never both fire the same alert: the second one sees the first one's state."""
        with self._write():
            decision = plan(self.states())
            self._record([(f, *stage(f)) for f in decision.fire], decision.clear, now)
        return decision

    def record(self, fire: Sequence[tuple[Firing, int, tuple[str, ...]]], clear: Sequence[StoredState],
               now: int) -> list[int]:
        """Persist new firings (each with its release time and channels) and cleared states atomically."""
        with self._write():
            return self._record(fire, clear, now)

    def _record(self, fire: Sequence[tuple[Firing, int, tuple[str, ...]]], clear: Sequence[StoredState],
                now: int) -> list[int]:
        ids: list[int] = []
        c = self.conn
        for f, release, channels in fire:
            c.execute(
                "INSERT INTO alert_state (rule_key, card, subject, period, status, level, fired_at,"
                " cleared_at) VALUES (?, ?, ?, ?, 'fired', ?, ?, NULL)"
                " ON CONFLICT (rule_key, card, subject) DO UPDATE"
                " SET period = excluded.period, status = 'fired', level = excluded.level,"
                " fired_at = excluded.fired_at, cleared_at = NULL",
                (f.rule_key, f.card, f.subject, f.period, f.level, now))
            cur = c.execute(
                "INSERT INTO alert_event (rule_key, card, subject, period, kind, level, fired_at,"
                " deliver_after, title, body, figures, action)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (f.rule_key, f.card, f.subject, f.period, f.kind, f.level, now, release, f.title, f.body,
                 json.dumps(dict(f.figures), ensure_ascii=False, default=str),
                 repr(f.action) if f.action else None))
            event_id = int(cur.lastrowid or 0)
            ids.append(event_id)
            c.executemany(
                "INSERT INTO alert_delivery (event_id, channel, status, next_attempt_at)"
                " VALUES (?, ?, 'pending', ?)",
                [(event_id, ch, release) for ch in channels])
        for s in clear:
            c.execute("UPDATE alert_state SET status = 'cleared', cleared_at = ? "
                      "WHERE rule_key = ? AND card = ? AND subject = ?",
                      (now, s.rule_key, s.card, s.subject))
        return ids

    # ------------------------------------------------------------ deliveries

    def due(self, now: int, lease_s: int = 300) -> list[DueDelivery]:
        """Claim the pending deliveries due at ``now``: they are pushed ``lease_s`` ahead, so another
        process does not send them too, and a crash mid-send only delays them."""
        with self._write() as c:
            rows = self._read(
                "SELECT d.id, d.event_id, d.channel, d.attempts, e.title, e.body, e.kind"
                " FROM alert_delivery d"
                " JOIN alert_event e ON e.id = d.event_id"
                " WHERE d.status = 'pending' AND d.next_attempt_at <= ?"
                " ORDER BY d.next_attempt_at, d.id", (now,))
            c.executemany("UPDATE alert_delivery SET next_attempt_at = ? WHERE id = ?",
                          [(now + lease_s, r["id"]) for r in rows])
        return [DueDelivery(**r) for r in rows]

    def record_attempt(self, delivery_id: int, now: int, error: str | None, retry_at: int | None) -> None:
        """One attempt: delivered (error None), retry later (retry_at), or given up (neither)."""
        with self._write() as c:
            c.execute("INSERT INTO alert_attempt (delivery_id, at, ok, error) VALUES (?, ?, ?, ?)",
                      (delivery_id, now, int(error is None), error))
            if error is None:
                c.execute("UPDATE alert_delivery SET status = 'delivered', attempts = attempts + 1,"
                          " delivered_at = ?, last_error = NULL WHERE id = ?", (now, delivery_id))
            elif retry_at is not None:
                c.execute("UPDATE alert_delivery SET attempts = attempts + 1, next_attempt_at = ?,"
                          " last_error = ? WHERE id = ?", (retry_at, error, delivery_id))
            else:
                c.execute("UPDATE alert_delivery SET status = 'failed', attempts = attempts + 1,"
                          " last_error = ? WHERE id = ?", (error, delivery_id))

    def history(self, limit: int = 50) -> list[dict[str, Any]]:
        """Newest events first, each with its deliveries and their attempts."""
        events = self._read("SELECT id, rule_key, card, subject, kind, level, fired_at, deliver_after,"
                            " title, body, figures FROM alert_event ORDER BY fired_at DESC, id DESC LIMIT ?",
                            (limit,))
        for ev in events:
            ev["figures"] = json.loads(ev["figures"])
            ev["deliveries"] = self._read(
                "SELECT id, channel, status, attempts, next_attempt_at, delivered_at, last_error"
                " FROM alert_delivery WHERE event_id = ? ORDER BY channel", (ev["id"],))
            for d in ev["deliveries"]:
                d["attempt_log"] = self._read("SELECT at, ok, error FROM alert_attempt WHERE delivery_id = ?"
                                              " ORDER BY id", (d.pop("id"),))
        return events

    # ------------------------------------------------------------ enforcement

    def enforcements(self) -> list[EnforcementRecord]:
        rows = self._read("SELECT card, interface, action, rate_bps, rule_key, since, detail FROM enforcement"
                          " ORDER BY card")
        return [EnforcementRecord(**{**r, "detail": json.loads(r["detail"])}) for r in rows]

    def set_enforcement(self, rec: EnforcementRecord) -> None:
        with self._write() as c:
            c.execute("INSERT OR REPLACE INTO enforcement (card, interface, action, rate_bps, rule_key,"
                      " since, detail) VALUES (?, ?, ?, ?, ?, ?, ?)",
                      (rec.card, rec.interface, rec.action, rec.rate_bps, rec.rule_key, rec.since,
                       json.dumps(dict(rec.detail))))

    def drop_enforcement(self, card: str) -> None:
        with self._write() as c:
            c.execute("DELETE FROM enforcement WHERE card = ?", (card,))
