"""The hub outbox: what the device still owes the fleet hub, kept in the store itself.

While a hub is configured (meta ``hub_outbox`` set), every write of usage or attribution also
appends its deltas here, in the same transaction, so a crash at any instant leaves both or neither:
the hub can never be owed a byte the device does not hold, nor be sent one twice. Batches formed
from the outbox are stored with their sequence number before they are sent, and stay until the hub
acknowledges them (then a while longer, in case the hub must be resent from an earlier one).

Retention asks :func:`retention_floor` first: no bucket the hub has not acknowledged is deleted.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections import defaultdict
from collections.abc import Iterable
from zoneinfo import ZoneInfo

from datacap.model import AttribDelta
from datacap.timeutil import UTC, bucket_end, bucket_start

OUTBOX_MIGRATION = ("0360_hub_outbox", """
-- Usage deltas per 5-minute bucket not yet in a batch (card '' = not stamped).
CREATE TABLE hub_outbox_usage (
    id INTEGER PRIMARY KEY, start INTEGER NOT NULL, iface TEXT NOT NULL, card TEXT NOT NULL DEFAULT '',
    rx INTEGER NOT NULL, tx INTEGER NOT NULL,
    rxp INTEGER NOT NULL DEFAULT 0, txp INTEGER NOT NULL DEFAULT 0     -- packets
);
-- Attribution deltas per UTC hour and dimension (kind app/client/service) not yet in a batch.
CREATE TABLE hub_outbox_attrib (
    id INTEGER PRIMARY KEY, start INTEGER NOT NULL, iface TEXT NOT NULL, card TEXT NOT NULL DEFAULT '',
    kind TEXT NOT NULL CHECK (kind IN ('app', 'client', 'service')), name TEXT NOT NULL,
    rx INTEGER NOT NULL, tx INTEGER NOT NULL
);
-- Batches formed, numbered and stored before sending; acked_at set when the hub acknowledged it.
CREATE TABLE hub_batches (
    seq INTEGER PRIMARY KEY, device TEXT NOT NULL, created INTEGER NOT NULL, body BLOB NOT NULL,
    usage_rows INTEGER NOT NULL, attrib_rows INTEGER NOT NULL,
    first_start INTEGER,            -- the oldest bucket it carries (retention keeps it until acked)
    attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT, acked_at INTEGER
);
CREATE INDEX hub_batches_unacked ON hub_batches (seq) WHERE acked_at IS NULL;
-- Cursors: the last calibration/text/alert id put in a batch.
CREATE TABLE hub_cursor (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
""")

ENABLED_KEY = "hub_outbox"
# The longest bucket of each resolution: a bucket starting this long before the floor may hold
# bytes after it (a 25-hour DST day, a 31-day month, a leap year), so it is kept too.
_SPAN = {"5min": 0, "hour": 3600, "day": 2 * 86400, "week": 8 * 86400, "month": 32 * 86400,
         "year": 367 * 86400}


def enabled(conn: sqlite3.Connection) -> bool:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (ENABLED_KEY,)).fetchone()
    return row is not None


def record(conn: sqlite3.Connection, traffic: Iterable[tuple[int, str, str, int, int, int, int]],
           attrib: Iterable[AttribDelta]) -> None:
    """Append one write's deltas (inside the writer's transaction). ``traffic``: (bucket, iface,
    card, rx, tx, rx packets, tx packets). Attribution is summed per UTC hour and dimension."""
    usage: dict[tuple[int, str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for bucket, iface, card, *counts in traffic:
        acc = usage[(bucket, iface, card)]
        for i, n in enumerate(counts):
            acc[i] += n
    conn.executemany("INSERT INTO hub_outbox_usage (start, iface, card, rx, tx, rxp, txp) VALUES (?, ?, ?, ?, ?, ?, ?)",
                     [(*key, *n) for key, n in sorted(usage.items()) if any(n)])
    dims: dict[tuple[int, str, str, str, str], list[int]] = defaultdict(lambda: [0, 0])
    for d in attrib:
        hour = d.bucket - d.bucket % 3600
        names = (("app", d.app.name if d.app else None),
                 ("client", _client_name(d) if d.client else None),
                 ("service", d.service))
        for kind, name in names:
            if name:
                acc = dims[(hour, d.interface, d.card or "", kind, name)]
                acc[0] += d.rx_bytes
                acc[1] += d.tx_bytes
    conn.executemany("INSERT INTO hub_outbox_attrib (start, iface, card, kind, name, rx, tx) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?)",
                     [(*key, rx, tx) for key, (rx, tx) in sorted(dims.items()) if rx or tx])


def backfill(conn: sqlite3.Connection, tz: ZoneInfo) -> int:
    """Owe the hub everything the store already holds (inside the transaction that enables the
    outbox, so every byte is owed exactly once: before it by this copy, after it by ``record``).

    Usage at the finest resolution retention kept: 5-minute buckets, then hours before those, then
    days, then months (each sent as one row at its start). Attribution from the hourly rows.
    Returns the rows copied.
    """
    levels = ("5min", "hour", "day", "month")
    upper: int | None = None
    copied = 0
    for res in levels:
        row = conn.execute("SELECT value FROM meta WHERE key = ?", (f"complete_since_{res}",)).fetchone()
        # This resolution is complete from ``lower`` on; the coarser one covers what is before.
        lower = None if row is None else _ceil(_COARSER[res], int(row[0]), tz)
        cur = conn.execute(
            "INSERT INTO hub_outbox_usage (start, iface, card, rx, tx, rxp, txp) SELECT u.start, i.name, u.card, "
            "u.rx_bytes, u.tx_bytes, u.rx_packets, u.tx_packets FROM usage u JOIN interfaces i ON i.id = u.iface_id "
            "WHERE u.res = ? "
            "AND u.start >= ? AND u.start < ? AND (u.rx_bytes OR u.tx_bytes) ORDER BY u.start",
            (res, lower if lower is not None else 0, upper if upper is not None else 1 << 62))
        copied += cur.rowcount
        if lower is None:
            break
        upper = lower
    for kind, join, name in (("app", "apps p ON p.id = a.app_id", "p.name"),
                             ("client", "clients c ON c.id = a.client_id",
                              "coalesce(nullif(c.hostname, ''), nullif(c.ip, ''), c.mac)"),
                             ("service", "services s ON s.id = a.service_id", "s.name")):
        cur = conn.execute(
            f"INSERT INTO hub_outbox_attrib (start, iface, card, kind, name, rx, tx) "
            f"SELECT a.start - a.start % 3600, i.name, a.card, '{kind}', {name}, sum(a.rx_bytes), sum(a.tx_bytes) "
            f"FROM attrib a JOIN {join} JOIN interfaces i ON i.id = a.iface_id WHERE a.res = 'hour' "
            f"GROUP BY 1, 2, 3, 5 HAVING sum(a.rx_bytes) OR sum(a.tx_bytes) ORDER BY 1")
        copied += cur.rowcount
    return copied


_COARSER = {"5min": "hour", "hour": "day", "day": "month", "month": "year"}


def _ceil(res: str, instant: int, tz: ZoneInfo) -> int:
    """The start of the first ``res`` bucket at or after ``instant`` (local to ``tz``)."""
    start = bucket_start(res, dt.datetime.fromtimestamp(instant, UTC), tz)  # type: ignore[arg-type]
    if int(start.timestamp()) == instant:
        return instant
    return int(bucket_end(res, start, tz).timestamp())  # type: ignore[arg-type]


def _client_name(d: AttribDelta) -> str:
    """The name the store's views give a client: hostname, else IP, else MAC."""
    assert d.client is not None
    return d.client.hostname or d.client.ip or d.client.mac or ""


def retention_floor(conn: sqlite3.Connection) -> int | None:
    """The oldest bucket start the hub has not acknowledged (None: nothing owed, or no hub)."""
    if not enabled(conn):
        return None
    row = conn.execute("""SELECT min(s) FROM (
        SELECT min(start) AS s FROM hub_outbox_usage UNION ALL SELECT min(start) FROM hub_outbox_attrib
        UNION ALL SELECT min(first_start) FROM hub_batches WHERE acked_at IS NULL)""").fetchone()
    return None if row[0] is None else int(row[0])


def retention_cut(res: str, cut: int, floor: int | None) -> int:
    """Retention's cut for ``res`` held back so no bucket holding unacknowledged bytes goes."""
    if floor is None:
        return cut
    return min(cut, floor - _SPAN.get(res, 0))
