"""Each received text handled once, whatever object path ModemManager announces it under.

ModemManager keeps received texts in the SIM's or the modem's storage and, every time a modem is
enabled (after a slot switch, a reset, a ModemManager restart, a resume), loads them again and emits
``Messaging.Added(path, true)`` for each under a *new* object path (``mm-iface-modem-messaging.c``,
enabling step LOAD_INITIAL_SMS_PARTS). A path therefore says nothing about whether a text is new.

A text's identity is its sender, SMSC timestamp, text and the ICCID of the SIM it arrived on, recorded
in the store (table ``texts``, one row per Sms part) the first time datacap sees it:

* a part received live arrived on the SIM active now;
* a part loaded from storage (``TextPart.stored``) is first looked up by sender, timestamp and text:
  when found, it is a replay and keeps the ICCID recorded at its arrival (the card it belongs to even
  if another SIM is active now); when not found it came while datacap was not watching, and the SIM
  it arrived on is the one active on that modem at its timestamp, from the SIM changes datacap
  recorded (``modem_events``), else the one active now.

:meth:`TextLedger.admit` returns the message made of its new parts only (None when every part was
seen before), so old texts from one sender re-announced in one burst are never joined into a new one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import sqlite3
import time
from dataclasses import dataclass

from datacap.errors import StoreError
from datacap.modem.sms_join import timestamp_epoch
from datacap.modem.types import USSD_SENDER, SmsMessage, TextPart

TEXTS_MIGRATION = ("0320_texts", """
CREATE TABLE IF NOT EXISTS texts (
    key      TEXT    PRIMARY KEY,            -- sha256 of sender, SMSC timestamp, text, ICCID at arrival
    content  TEXT    NOT NULL,               -- sha256 of sender, SMSC timestamp, text (replay look-up)
    modem    TEXT    NOT NULL,               -- DeviceIdentifier of the modem it arrived on
    iccid    TEXT,                           -- the SIM it arrived on (NULL: unknown)
    sender   TEXT    NOT NULL,
    sent_at  TEXT,                           -- SMSC timestamp as ModemManager gives it
    text     TEXT    NOT NULL,
    seen_at  INTEGER NOT NULL,               -- UTC epoch seconds datacap first saw it
    deleted  INTEGER NOT NULL DEFAULT 0,     -- 1: datacap deleted it from the modem ([modem] delete_handled)
    message  TEXT    NOT NULL DEFAULT ''     -- key of the first part of the (joined) text it was handled in
);
CREATE INDEX IF NOT EXISTS texts_content ON texts (content);
CREATE INDEX IF NOT EXISTS texts_seen ON texts (seen_at);
""")


def _digest(*fields: str | None) -> str:
    return hashlib.sha256("\x1f".join(f or "" for f in fields).encode()).hexdigest()


def content_key(sender: str, timestamp: str | None, text: str) -> str:
    return _digest(sender, timestamp, text)


def text_key(sender: str, timestamp: str | None, text: str, iccid: str | None) -> str:
    return _digest(sender, timestamp, text, iccid)


def message_key(msg: SmsMessage) -> str:
    """A handled text's identity: the key of its first part (as :meth:`TextLedger.admit` returned it)."""
    first = msg.parts[0] if msg.parts else TextPart("", msg.text, msg.timestamp)
    return text_key(msg.sender, first.timestamp, first.text, msg.iccid)


@dataclass(frozen=True, slots=True)
class StoredText:
    key: str
    modem: str
    iccid: str | None
    sender: str
    sent_at: str | None
    text: str
    seen_at: int
    deleted: bool


class TextLedger:
    """The ``texts`` table over a connection that has :data:`TEXTS_MIGRATION` (and the carrier one,
    whose ``modem_events`` says which SIM was active when)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def arrival_iccid(self, modem: str, stamp: float | None, current: str | None) -> str | None:
        """The SIM active on ``modem`` at epoch ``stamp``, from the recorded SIM changes; else ``current``."""
        if stamp is None:
            return current
        after = self.conn.execute(
            "SELECT old, new FROM modem_events WHERE modem = ? AND kind = 'sim-change' AND at > ? "
            "ORDER BY at, id LIMIT 1", (modem, int(stamp))).fetchone()
        if after is not None:
            # The first change after the text left the SIM it arrived on; a first sighting (old NULL)
            # says which SIM was there when datacap started, the best knowledge of earlier times.
            return after[0] if after[0] is not None else after[1]
        before = self.conn.execute(
            "SELECT new FROM modem_events WHERE modem = ? AND kind = 'sim-change' AND at <= ? "
            "ORDER BY at DESC, id DESC LIMIT 1", (modem, int(stamp))).fetchone()
        return before[0] if before is not None else current

    def _known(self, msg: SmsMessage, part: TextPart) -> tuple[bool, str | None]:
        """(seen before, the ICCID it arrived on) for one part."""
        if part.stored:
            row = self.conn.execute("SELECT iccid FROM texts WHERE content = ? ORDER BY seen_at LIMIT 1",
                                    (content_key(msg.sender, part.timestamp, part.text),)).fetchone()
            if row is not None:
                return True, row[0]
            return False, self.arrival_iccid(msg.modem_device_id, timestamp_epoch(part.timestamp), msg.iccid)
        key = text_key(msg.sender, part.timestamp, part.text, msg.iccid)
        seen = self.conn.execute("SELECT 1 FROM texts WHERE key = ?", (key,)).fetchone() is not None
        return seen, msg.iccid

    def admit(self, msg: SmsMessage, now: float | None = None) -> SmsMessage | None:
        """The part of ``msg`` never seen before, recorded now; None when all of it was seen.

        Network-initiated USSD messages are never stored by the modem, so never replayed: they pass.
        """
        if msg.sender == USSD_SENDER:
            return msg
        parts = msg.parts or tuple(TextPart(p, msg.text if len(msg.paths) == 1 else "", msg.timestamp)
                                   for p in msg.paths) or (TextPart("", msg.text, msg.timestamp),)
        fresh: list[tuple[TextPart, str | None]] = []
        for part in parts:
            seen, iccid = self._known(msg, part)
            if not seen:
                fresh.append((part, iccid))
        if not fresh:
            return None
        at = int(now if now is not None else time.time())
        first, first_iccid = fresh[0]
        message = text_key(msg.sender, first.timestamp, first.text, first_iccid)
        try:
            with self.conn:
                self.conn.executemany(
                    "INSERT OR IGNORE INTO texts (key, content, modem, iccid, sender, sent_at, text, seen_at, message) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [(text_key(msg.sender, p.timestamp, p.text, i), content_key(msg.sender, p.timestamp, p.text),
                      msg.modem_device_id, i, msg.sender, p.timestamp, p.text, at, message) for p, i in fresh])
        except sqlite3.Error as err:
            raise StoreError(f"cannot record a received text: {err}") from None
        new_parts = tuple(p for p, _ in fresh)
        return dataclasses.replace(
            msg, iccid=fresh[0][1], text="".join(p.text for p in new_parts), timestamp=new_parts[0].timestamp,
            paths=tuple(p.path for p in new_parts), parts=new_parts)

    def mark_deleted(self, msg: SmsMessage, iccid: str | None) -> None:
        keys = [text_key(msg.sender, p.timestamp, p.text, iccid) for p in msg.parts]
        contents = [content_key(msg.sender, p.timestamp, p.text) for p in msg.parts]
        with self.conn:
            self.conn.executemany("UPDATE texts SET deleted = 1 WHERE key = ? OR content = ?",
                                  list(zip(keys, contents, strict=True)))

    def messages(self, limit: int = 50, iccids: tuple[str, ...] = ()) -> list[StoredText]:
        """The newest ``limit`` texts as they were handled (parts joined), newest first; ``key`` is the
        text's identity (:func:`message_key`)."""
        sql = ("SELECT message, min(modem), min(iccid), min(sender), min(sent_at), group_concat(text, ''), "
               "min(seen_at), min(deleted) FROM (SELECT * FROM texts ORDER BY rowid)")
        args: list[object] = []
        if iccids:
            sql += f" WHERE iccid IN ({', '.join('?' * len(iccids))})"
            args += list(iccids)
        sql += " GROUP BY message ORDER BY min(seen_at) DESC, min(rowid) DESC LIMIT ?"
        rows = self.conn.execute(sql, [*args, limit]).fetchall()
        return [StoredText(k, m, i, s, t, x, at, bool(d)) for k, m, i, s, t, x, at, d in rows]

    def recent(self, limit: int = 50, iccid: str | None = None) -> list[StoredText]:
        """The newest ``limit`` texts (one row per part), newest first."""
        sql = "SELECT key, modem, iccid, sender, sent_at, text, seen_at, deleted FROM texts"
        args: list[object] = []
        if iccid is not None:
            sql += " WHERE iccid = ?"
            args.append(iccid)
        rows = self.conn.execute(sql + " ORDER BY seen_at DESC, rowid DESC LIMIT ?", [*args, limit]).fetchall()
        return [StoredText(k, m, i, s, t, x, at, bool(d)) for k, m, i, s, t, x, at, d in rows]
