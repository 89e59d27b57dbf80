"""SQLite persistence for the carrier history and for SIM changes and switches.

The integrator registers :data:`CARRIER_MIGRATION` with the store's migrations and hands both classes
the store's ``sqlite3.Connection``. Each write commits at once (``with conn``) so a limit counted
before a crash is still counted after it.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import dataclass
from typing import Literal

from datacap.errors import StoreError
from datacap.modem.carrier import CarrierEvent
from datacap.modem.types import USSD_SENDER, SimChange

CARRIER_MIGRATION = ("0100_carrier", """
CREATE TABLE IF NOT EXISTS carrier_log (
    id        INTEGER PRIMARY KEY,
    card      TEXT    NOT NULL,
    at        INTEGER NOT NULL,                 -- UTC epoch seconds
    direction TEXT    NOT NULL CHECK (direction IN ('sent', 'received')),
    kind      TEXT    NOT NULL,                 -- sms | ussd
    peer      TEXT    NOT NULL,                 -- number or USSD code queried; sender of a reply
    text      TEXT    NOT NULL,
    ok        INTEGER,                          -- received: 1 a figure was read, 0 not
    reason    TEXT                              -- received and not ok: why
);
CREATE INDEX IF NOT EXISTS carrier_log_card_at ON carrier_log (card, direction, at);
CREATE TABLE IF NOT EXISTS modem_events (
    id        INTEGER PRIMARY KEY,
    at        INTEGER NOT NULL,                 -- UTC epoch seconds
    kind      TEXT    NOT NULL CHECK (kind IN ('sim-change', 'slot-switch', 'profile-switch')),
    modem     TEXT    NOT NULL,                 -- ModemManager DeviceIdentifier (stable across re-probes)
    interfaces TEXT   NOT NULL DEFAULT '',      -- comma-separated network interfaces of the modem
    old       TEXT,                             -- ICCID before (NULL: first seen / unknown)
    new       TEXT,                             -- ICCID after (NULL: SIM removed); slot switch: "slot N"
    card      TEXT,                             -- the card that was exhausted, for switches
    detail    TEXT
);
CREATE INDEX IF NOT EXISTS modem_events_modem_at ON modem_events (modem, at);
""")

EventKind = Literal["sim-change", "slot-switch", "profile-switch"]


def _epoch(at: dt.datetime) -> int:
    if at.tzinfo is None:
        raise ValueError("times must be timezone-aware")
    return int(at.timestamp())


class SqliteCarrierLog:
    """:class:`datacap.modem.carrier.CarrierLog` over a connection that has :data:`CARRIER_MIGRATION`."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def _write(self, sql: str, args: tuple[object, ...]) -> None:
        try:
            with self.conn:
                self.conn.execute(sql, args)
        except sqlite3.Error as err:
            raise StoreError(f"cannot record the carrier history: {err}") from None

    def record_sent(self, card: str, at: dt.datetime, kind: str, target: str, text: str) -> None:
        self._write("INSERT INTO carrier_log (card, at, direction, kind, peer, text) "
                    "VALUES (?, ?, 'sent', ?, ?, ?)",
                    (card, _epoch(at), kind, target, text))

    def record_reply(self, card: str, at: dt.datetime, sender: str, text: str, ok: bool,
                     reason: str | None) -> None:
        # A USSD reply's "sender" is the code; a network-initiated USSD message's is "USSD".
        kind = "ussd" if sender.startswith(("*", "#")) or sender == USSD_SENDER else "sms"
        self._write("INSERT INTO carrier_log (card, at, direction, kind, peer, text, ok, reason) "
                    "VALUES (?, ?, 'received', ?, ?, ?, ?, ?)",
                    (card, _epoch(at), kind, sender, text, int(ok), reason))

    def sent_since(self, card: str, since: dt.datetime) -> int:
        row = self.conn.execute("SELECT count(*) FROM carrier_log WHERE card = ? AND direction = 'sent' "
                                "AND at >= ?", (card, _epoch(since))).fetchone()
        return int(row[0])

    def history(self, card: str | None = None, limit: int | None = None) -> list[CarrierEvent]:
        """Oldest first; the newest ``limit`` events when given."""
        sql = "SELECT card, at, direction, kind, peer, text, ok, reason FROM carrier_log"
        args: list[object] = []
        if card is not None:
            sql += " WHERE card = ?"
            args.append(card)
        sql += " ORDER BY at DESC, id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        rows = self.conn.execute(sql, args).fetchall()
        return [CarrierEvent(c, at, d, k, p, t, None if ok is None else bool(ok), r)
                for c, at, d, k, p, t, ok, r in reversed(rows)]


@dataclass(frozen=True, slots=True)
class ModemEvent:
    at: int
    kind: EventKind
    modem: str
    interfaces: tuple[str, ...]
    old: str | None
    new: str | None
    card: str | None
    detail: str | None


class SqliteModemEvents:
    """SIM changes seen and switches made, so history can say which SIM a modem carried when."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def record(self, at: dt.datetime, kind: EventKind, modem: str, interfaces: tuple[str, ...] = (),
               old: str | None = None, new: str | None = None, card: str | None = None,
               detail: str | None = None) -> None:
        try:
            with self.conn:
                self.conn.execute(
                    "INSERT INTO modem_events (at, kind, modem, interfaces, old, new, card, detail) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (_epoch(at), kind, modem, ",".join(interfaces), old, new, card, detail))
        except sqlite3.Error as err:
            raise StoreError(f"cannot record the modem event: {err}") from None

    def record_sim_change(self, change: SimChange) -> None:
        """Persist a :class:`SimChange` from the ModemManager client."""
        at = dt.datetime.fromtimestamp(change.at, dt.UTC)
        self.record(at, "sim-change", change.modem_device_id, change.interfaces, change.old_iccid,
                    change.new_iccid, detail=change.modem_path)

    def events(self, modem: str | None = None) -> list[ModemEvent]:
        sql = "SELECT at, kind, modem, interfaces, old, new, card, detail FROM modem_events"
        args: tuple[object, ...] = ()
        if modem is not None:
            sql += " WHERE modem = ?"
            args = (modem,)
        rows = self.conn.execute(sql + " ORDER BY at, id", args).fetchall()
        return [ModemEvent(at, kind, m, tuple(i.split(",")) if i else (), o, n, c, d)
                for at, kind, m, i, o, n, c, d in rows]
