"""The store's schema as named migrations, applied in order and recorded in the database.

Times are UTC epoch seconds. ``usage`` holds interface bytes (the billing truth) at every resolution;
``attrib`` holds the part of those bytes that flows attributed to an app, LAN client or service. A
dimension id of 0 means "not known". Feature modules (reports, carrier, alerts) define their own
migrations, listed in FEATURE_MIGRATIONS; names sort in the order they must run.
"""

from __future__ import annotations

import importlib
import sqlite3

from datacap.errors import StoreError

Migration = tuple[str, str]

CORE_MIGRATIONS: list[Migration] = [
    ("0001_core", """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE interfaces (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    link_type TEXT,                 -- 'ether', 'rawip', 'ppp', ... (l2_overhead = "auto" needs it)
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL
);
-- Interface bytes per bucket. res: 5min hour day week month year. card '' = charged by config.
CREATE TABLE usage (
    res TEXT NOT NULL, iface_id INTEGER NOT NULL, start INTEGER NOT NULL, card TEXT NOT NULL DEFAULT '',
    rx_bytes INTEGER NOT NULL DEFAULT 0, tx_bytes INTEGER NOT NULL DEFAULT 0,
    rx_packets INTEGER NOT NULL DEFAULT 0, tx_packets INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (res, iface_id, start, card)
) WITHOUT ROWID;
CREATE TABLE apps (id INTEGER PRIMARY KEY, name TEXT NOT NULL, exe TEXT NOT NULL DEFAULT '',
                   unit TEXT NOT NULL DEFAULT '', user TEXT NOT NULL DEFAULT '',
                   UNIQUE (name, exe, unit, user));
CREATE TABLE clients (id INTEGER PRIMARY KEY, ip TEXT NOT NULL, mac TEXT NOT NULL DEFAULT '',
                      hostname TEXT NOT NULL DEFAULT '', UNIQUE (ip, mac));
CREATE TABLE services (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE attrib (
    res TEXT NOT NULL, start INTEGER NOT NULL, iface_id INTEGER NOT NULL, card TEXT NOT NULL DEFAULT '',
    app_id INTEGER NOT NULL DEFAULT 0, client_id INTEGER NOT NULL DEFAULT 0,
    service_id INTEGER NOT NULL DEFAULT 0,
    rx_bytes INTEGER NOT NULL DEFAULT 0, tx_bytes INTEGER NOT NULL DEFAULT 0,
    flows INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (res, start, iface_id, card, app_id, client_id, service_id)
) WITHOUT ROWID;
CREATE INDEX attrib_app ON attrib (res, app_id, start) WHERE app_id != 0;
CREATE INDEX attrib_client ON attrib (res, client_id, start) WHERE client_id != 0;
CREATE INDEX attrib_service ON attrib (res, service_id, start) WHERE service_id != 0;
-- The last raw counters the stored deltas were computed from; written in the same transaction.
CREATE TABLE counters (
    iface TEXT PRIMARY KEY, ifindex INTEGER NOT NULL, boot_id TEXT NOT NULL,
    boottime REAL NOT NULL, wall REAL NOT NULL,
    rx_bytes INTEGER NOT NULL, tx_bytes INTEGER NOT NULL,
    rx_packets INTEGER NOT NULL, tx_packets INTEGER NOT NULL
);
CREATE TABLE imports (sha256 TEXT PRIMARY KEY, path TEXT NOT NULL, rows INTEGER NOT NULL,
                      imported_at INTEGER NOT NULL);
-- What the meter did not count and why (implausible deltas, resets, reboots), for `datacap events`.
CREATE TABLE events (id INTEGER PRIMARY KEY, at INTEGER NOT NULL, iface TEXT, kind TEXT NOT NULL,
                     detail TEXT NOT NULL);
"""),
    ("0002_calibrations", """
-- The carrier's own figures; each replaces datacap's count up to its instant (see datacap.plans).
CREATE TABLE calibrations (
    id INTEGER PRIMARY KEY, card TEXT NOT NULL,
    bucket TEXT,                    -- NULL: the unscoped buckets together; 'rollover:NAME'
    at INTEGER NOT NULL,            -- UTC epoch seconds of the carrier's figure
    used_bytes INTEGER NOT NULL CHECK (used_bytes >= 0),
    local_used_bytes INTEGER,       -- datacap's count it corrected (shows the drift)
    source TEXT NOT NULL,           -- 'cli', 'sms:10086', 'web', ...
    created INTEGER NOT NULL,
    raw TEXT                        -- the SMS text it came from
);
CREATE INDEX calibrations_card_at ON calibrations (card, at);
"""),
]

# Features keep their tables next to their code; their migrations are loaded only when a store is
# opened for writing, so read-only commands never import them.
FEATURE_MIGRATIONS: list[tuple[str, str]] = [
    ("datacap.reports.schedule", "MIGRATION"),
    ("datacap.modem.carrier_log", "CARRIER_MIGRATION"),
    ("datacap.modem.texts", "TEXTS_MIGRATION"),
    ("datacap.modem.forward", "FORWARD_MIGRATION"),
    ("datacap.alerts.state", "ALERTS_MIGRATION"),
    ("datacap.store.calibrations", "MIGRATION"),
    ("datacap.store.outbox", "OUTBOX_MIGRATION"),
    ("datacap.alerts.client_caps", "CLIENT_CAPS_MIGRATION"),
    ("datacap.modem.keepalive", "KEEPALIVE_MIGRATION"),
]


def all_migrations() -> list[Migration]:
    features = [getattr(importlib.import_module(module), attr) for module, attr in FEATURE_MIGRATIONS]
    return sorted(CORE_MIGRATIONS + features)


def migrate(conn: sqlite3.Connection, path: object = "the store") -> list[str]:
    """Apply the migrations not yet recorded, each in its own transaction. Returns their names."""
    conn.execute("CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at INTEGER NOT NULL)")
    done = {row[0] for row in conn.execute("SELECT name FROM migrations")}
    known = {name for name, _ in all_migrations()}
    unknown = done - known
    if unknown:
        raise StoreError(f"the store was written by a newer datacap (migrations {sorted(unknown)}); upgrade datacap")
    applied = []
    for name, sql in all_migrations():
        if name in done:
            continue
        try:
            conn.execute("BEGIN IMMEDIATE")
            for statement in _statements(sql):
                conn.execute(statement)
            conn.execute("INSERT INTO migrations VALUES (?, strftime('%s','now'))", (name,))
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:  # SQLite rolls back by itself on a full disk or an I/O error
                conn.execute("ROLLBACK")
            from datacap.store.db import describe_sqlite_error

            raise StoreError(f"migration {name} failed, the store is unchanged: "
                             f"{describe_sqlite_error(path, exc)}") from exc
        applied.append(name)
    return applied


def _statements(sql: str) -> list[str]:
    """Split a migration script into statements (executescript would commit our transaction)."""
    out, buf = [], ""
    for line in sql.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            out.append(buf.strip())
            buf = ""
    if buf.strip():
        out.append(buf.strip())
    return [s for s in out if s]
