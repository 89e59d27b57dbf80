"""Plan status from the store: the glue between the pure plan engine and the stored usage.

Which bytes belong to a card: records stamped with the card's name (imported with a ``card``
column, or metered while the card's SIM was active in a modem), and unstamped records on the card's
interfaces, unless the card names ICCIDs (then only stamped bytes count, so two SIMs used in one
modem never mix).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import sqlite3
import time
from typing import Any

from datacap.config import Config
from datacap.errors import InputError
from datacap.model import UsageRecord
from datacap.plans import (
    Calibration,
    CardConfig,
    compute_status,
    make_calibration,
    records_needed,
    sms_calibrations,
    status_document,
)
from datacap.plans.sms import SmsReading, parse_sms
from datacap.store import Reader, Writer
from datacap.timeutil import UTC


def find_card(cfg: Config, name: str | None) -> list[CardConfig]:
    """The named card, or every card; an unknown name is an error listing the known ones."""
    cards: list[CardConfig] = list(cfg.cards)
    if name is None:
        return cards
    chosen = [c for c in cards if c.name == name]
    if not chosen:
        known = ", ".join(c.name for c in cards) or "none: add a [[cards]] table to the config"
        raise InputError(f"--card {name}: no such card (known: {known})")
    return chosen


NOW_SLACK = 300  # an instant this close to the wall clock is "now": the store has nothing after it


def card_records(reader: Reader, card: CardConfig, since: dt.datetime, until: dt.datetime,
                 at: dt.datetime | None = None) -> list[UsageRecord]:
    """The card's usage records in [since, until); ``at``: the instant a status is computed for."""
    # Filtered as the store reads them: another card's intervals never become objects here.
    records = reader.usage_records(since, until, keep=lambda iface, stamp: belongs(card, iface, stamp))
    return records if at is None else _end_at_now(records, at)


def belongs(card: CardConfig, interface: str, stamp: str | None) -> bool:
    """Whether usage on ``interface`` stamped ``stamp`` (None or "": no stamp) is this card's."""
    if stamp:
        return stamp == card.name
    return not card.iccid and card.matches(interface)


def _end_at_now(records: list[UsageRecord], at: dt.datetime) -> list[UsageRecord]:
    """For a status "now", the bucket holding now was used entirely before now.

    The plan engine spreads a record over its interval and counts only the part before the instant
    asked about, which is right for a past instant, but "now" falls inside the current bucket whose
    bytes all happened already: end such records at now, so none of their bytes are left out.
    """
    hi = int(at.timestamp())
    if abs(time.time() - hi) > NOW_SLACK:
        return records
    return [dataclasses.replace(r, seconds=max(1, hi - r.start)) if r.start < hi < r.start + r.seconds else r
            for r in records]


def calibrations(conn: sqlite3.Connection, card: str) -> list[Calibration]:
    rows = conn.execute("SELECT card, bucket, at, used_bytes, source, local_used_bytes FROM calibrations "
                        "WHERE card = ? ORDER BY at, id", (card,))
    return [Calibration(c, b, dt.datetime.fromtimestamp(at, UTC), used, source, local)
            for c, b, at, used, source, local in rows]


def _engine_inputs(reader: Reader, card: CardConfig, at: dt.datetime) -> dict[str, Any]:
    since, until = records_needed(card, at, reader.tz)
    first = [i.first_seen for i in reader.interfaces() if card.matches(i.name)]
    return {"records": card_records(reader, card, since, until, at),
            "calibrations": calibrations(reader.conn, card.name),
            "ethernet_ifaces": frozenset(n for n, kind in reader.link_types().items() if kind == "ether"),
            "known_since": dt.datetime.fromtimestamp(min(first), UTC) if first else None}


def card_status(reader: Reader, card: CardConfig, at: dt.datetime) -> dict[str, Any]:
    inputs = _engine_inputs(reader, card, at)
    return compute_status(card, inputs["records"], inputs["calibrations"], at, reader.tz,
                          ethernet_ifaces=inputs["ethernet_ifaces"], known_since=inputs["known_since"])


def status_json(reader: Reader, cfg: Config, card: str | None = None, at: dt.datetime | None = None) -> dict[str, Any]:
    """``datacap status --json``: every card (or one) at an instant (default now)."""
    at = (at or dt.datetime.now(UTC)).astimezone(cfg.tz)
    return status_document(at, [card_status(reader, c, at) for c in find_card(cfg, card)])


def calibrate(writer: Writer, reader: Reader, card: CardConfig, at: dt.datetime, *, used: int | None = None,
              remaining: int | None = None, bucket: str | None = None, source: str = "cli") -> Calibration:
    """Store the carrier's figure for ``card`` at ``at``, with the local count it corrects."""
    inputs = _engine_inputs(reader, card, at)
    cal = make_calibration(card, inputs["records"], inputs["calibrations"], at, reader.tz, used=used,
                           remaining=remaining, bucket=bucket, source=source,
                           ethernet_ifaces=inputs["ethernet_ifaces"], known_since=inputs["known_since"])
    _store(writer, [cal], None)
    return cal


def calibrate_sms(writer: Writer, reader: Reader, card: CardConfig, text: str, *, sender: str | None = None,
                  at: dt.datetime | None = None, now: dt.datetime | None = None,
                  source: str | None = None) -> tuple[list[Calibration], list[str]]:
    """Read a carrier SMS and store what it says for ``card``; unreadable text raises InputError."""
    now = now or dt.datetime.now(UTC)
    reading = parse_sms(text, now, reader.tz, sender=sender)
    return calibrate_reading(writer, reader, card, reading, text, at=at, now=now, source=source)


def calibrate_reading(writer: Writer, reader: Reader, card: CardConfig, reading: SmsReading, text: str, *,
                      at: dt.datetime | None = None, now: dt.datetime | None = None,
                      source: str | None = None) -> tuple[list[Calibration], list[str]]:
    """Store what an already parsed carrier text says for ``card`` (the instant it states wins)."""
    now = now or dt.datetime.now(UTC)
    inputs = _engine_inputs(reader, card, reading.at or at or now)
    cals, notes = sms_calibrations(reading, card, inputs["records"], inputs["calibrations"], reader.tz, now, at=at,
                                   ethernet_ifaces=inputs["ethernet_ifaces"], known_since=inputs["known_since"])
    if source:
        cals = [dataclasses.replace(c, source=source) for c in cals]
    _store(writer, cals, text)
    return cals, notes


def _store(writer: Writer, cals: list[Calibration], raw: str | None) -> None:
    with writer.transaction() as conn:
        for c in cals:
            conn.execute("INSERT INTO calibrations (card, bucket, at, used_bytes, local_used_bytes, source, created, "
                         "raw) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                         (c.card, c.bucket, int(c.at.timestamp()), c.used_bytes, c.local_used_bytes, c.source,
                          int(time.time()), raw))


def calibration_doc(card: str, cals: list[Calibration], notes: list[str], tz: dt.tzinfo) -> dict[str, Any]:
    """What ``datacap calibrate --json`` (and ``POST /api/v1/calibrate``) answer."""
    return {"card": card, "notes": notes, "calibrations": [
        {"bucket": k.bucket, "at": k.at.astimezone(tz).isoformat(), "carrier_used_bytes": k.used_bytes,
         "local_used_bytes": k.local_used_bytes,
         "drift_bytes": None if k.local_used_bytes is None else k.used_bytes - k.local_used_bytes,
         "source": k.source} for k in cals]}
