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
from collections.abc import Callable
from typing import Any

from datacap.config import Config
from datacap.errors import InputError
from datacap.model import UsageRecord
from datacap.plans import (
    Calibration,
    CardConfig,
    make_calibration,
    records_needed,
    sms_calibrations,
)
from datacap.plans.carrier import Applied, carrier_mismatches, mismatch_of, target_label
from datacap.plans.engine import card_status as engine_card_status
from datacap.plans.sms import FIRST_YEAR, FUTURE_SLACK, Part, SmsReading, parse_sms
from datacap.plans.status_model import CardStatus, StatusDocument
from datacap.store import Reader, Writer
from datacap.store import calibrations as stored_calibrations
from datacap.timeutil import UTC


def find_card(cfg: Config, name: str | None) -> list[CardConfig]:
    """The named card, or every card; an unknown name is an error listing the known ones."""
    cards: list[CardConfig] = list(cfg.cards)
    if name is None:
        return cards
    chosen = [c for c in cards if c.name == name]
    if not chosen:
        if not cards:
            raise InputError(f"--card {name}: no such card (known: none: add a [[cards]] table to the config)")
        from datacap.references import nearest

        close = nearest(name, [c.name for c in cards])
        hint = f"did you mean {' or '.join(repr(c) for c in close)}?; " if close else ""
        raise InputError(f"--card {name}: no such card ({hint}known: {', '.join(c.name for c in cards)})")
    return chosen


NOW_SLACK = 300  # an instant this close to the wall clock is "now": the store has nothing after it


def card_records(reader: Reader, card: CardConfig, since: dt.datetime, until: dt.datetime,
                 at: dt.datetime | None = None) -> list[UsageRecord]:
    """The card's usage records in [since, until); ``at``: the instant a status is computed for."""
    # Filtered as the store reads them: another card's intervals never become objects here.
    records = reader.usage_records(since, until, keep=lambda iface, stamp: belongs(card, iface, stamp))
    return select_records(card, records, at)


def select_records(card: CardConfig, records: list[UsageRecord], at: dt.datetime | None = None) -> list[UsageRecord]:
    """The records that are the card's, as the plan engine must see them for a status at ``at``
    (the fleet hub feeds its own rows through this too, so a card's status is the same on both)."""
    mine = [r for r in records if belongs(card, r.interface, r.card)]
    return mine if at is None else _end_at_now(mine, at)


def belongs(card: CardConfig, interface: str, stamp: str | None) -> bool:
    """Whether usage on ``interface`` stamped ``stamp`` (None or "": no stamp) is this card's."""
    if stamp:
        return stamp == card.name
    return not card.iccid and card.matches(interface)


def usage_rule(cfg: Config, name: str, *, configured: bool = True) -> Callable[[str, str], bool]:
    """The one rule for which usage is card ``name``'s, as ``(interface, stamp) -> bool`` for the
    readers' ``belongs``: status, reports, rankings, alerts and the API all use it. A name that is no
    configured card is an error, unless ``configured`` is False: then only usage stamped with it counts
    (an imported history of a card no longer configured)."""
    chosen = next((c for c in cfg.cards if c.name == name), None)
    if chosen is None:
        if configured:
            find_card(cfg, name)  # raises, naming the known cards
        chosen = CardConfig(name=name)
    card = chosen
    return lambda interface, stamp: belongs(card, interface, stamp or None)


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
    return [Calibration(r.card, r.bucket, dt.datetime.fromtimestamp(r.at, UTC), r.used_bytes, r.source,
                        r.local_used_bytes, r.part, r.carrier_total, r.config_quota, r.id)
            for r in stored_calibrations.rows(conn, card)]


def _engine_inputs(reader: Reader, card: CardConfig, at: dt.datetime) -> dict[str, Any]:
    since, until = records_needed(card, at, reader.tz)
    first = [i.first_seen for i in reader.interfaces() if card.matches(i.name)]
    return {"records": card_records(reader, card, since, until, at),
            "calibrations": calibrations(reader.conn, card.name),
            "ethernet_ifaces": frozenset(n for n, kind in reader.link_types().items() if kind == "ether"),
            "known_since": dt.datetime.fromtimestamp(min(first), UTC) if first else None}


def card_status(reader: Reader, card: CardConfig, at: dt.datetime) -> CardStatus:
    inputs = _engine_inputs(reader, card, at)
    st = engine_card_status(card, inputs["records"], inputs["calibrations"], at, reader.tz,
                            ethernet_ifaces=inputs["ethernet_ifaces"], known_since=inputs["known_since"])
    mismatches = tuple(carrier_mismatches(card, inputs["calibrations"], at, reader.tz))
    return dataclasses.replace(st, carrier_mismatch=mismatches) if mismatches else st


def status_model(reader: Reader, cfg: Config, card: str | None = None,
                 at: dt.datetime | None = None) -> StatusDocument:
    """The typed status of every card (or one) at an instant (default now): what every face reads."""
    at = (at or dt.datetime.now(UTC)).astimezone(cfg.tz)
    return StatusDocument(at, tuple(card_status(reader, c, at) for c in find_card(cfg, card)))


def _refuse_future(at: dt.datetime) -> None:
    if at.year < FIRST_YEAR:
        raise InputError(f"calibrate: expected an instant after {FIRST_YEAR}, found {at.isoformat()}")
    if at > dt.datetime.now(UTC) + FUTURE_SLACK:
        raise InputError(f"calibrate: expected an instant in the past, found {at.isoformat()}, which is in the "
                         "future: the carrier cannot have counted it yet")


def status_json(reader: Reader, cfg: Config, card: str | None = None, at: dt.datetime | None = None) -> dict[str, Any]:
    """``datacap status --json``: every card (or one) at an instant (default now)."""
    return status_model(reader, cfg, card, at).to_json()


def calibrate(writer: Writer, reader: Reader, card: CardConfig, at: dt.datetime, *, used: int | None = None,
              remaining: int | None = None, bucket: str | None = None, source: str = "cli") -> Calibration:
    """Store the carrier's figure for ``card`` at ``at``, with the local count it corrects."""
    _refuse_future(at)
    inputs = _engine_inputs(reader, card, at)
    cal = make_calibration(card, inputs["records"], inputs["calibrations"], at, reader.tz, used=used,
                           remaining=remaining, bucket=bucket, source=source,
                           ethernet_ifaces=inputs["ethernet_ifaces"], known_since=inputs["known_since"])
    [cal_id] = _store(writer, [cal], None)
    return dataclasses.replace(cal, id=cal_id)


def calibrate_sms(writer: Writer, reader: Reader, card: CardConfig, text: str, *, sender: str | None = None,
                  at: dt.datetime | None = None, now: dt.datetime | None = None,
                  source: str | None = None) -> Applied:
    """Read a carrier SMS and store what it says for ``card``; unreadable text raises InputError."""
    now = now or dt.datetime.now(UTC)
    reading = parse_sms(text, now, reader.tz, sender=sender)
    return calibrate_reading(writer, reader, card, reading, text, at=at, now=now, source=source)


def calibrate_reading(writer: Writer, reader: Reader, card: CardConfig, reading: SmsReading, text: str, *,
                      at: dt.datetime | None = None, now: dt.datetime | None = None,
                      source: str | None = None) -> Applied:
    """Store what an already parsed carrier text says for ``card`` (the instant it states wins): every
    part where it belongs (:mod:`datacap.plans.carrier`). Unpacks as ``cals, notes``."""
    now = now or dt.datetime.now(UTC)
    _refuse_future(reading.at or at or now)
    inputs = _engine_inputs(reader, card, reading.at or at or now)
    applied = sms_calibrations(reading, card, inputs["records"], inputs["calibrations"], reader.tz, now, at=at,
                               ethernet_ifaces=inputs["ethernet_ifaces"], known_since=inputs["known_since"])
    cals = [dataclasses.replace(c, source=source) if source else c for c in applied.calibrations]
    ids = _store(writer, cals, text)
    cals = [dataclasses.replace(c, id=i) for c, i in zip(cals, ids, strict=True)]
    return dataclasses.replace(applied, calibrations=cals)


def _store(writer: Writer, cals: list[Calibration], raw: str | None) -> list[int]:
    with writer.transaction() as conn:
        return stored_calibrations.insert(conn, [
            (c.card, c.bucket, int(c.at.timestamp()), c.used_bytes, c.local_used_bytes, c.source, c.part,
             c.carrier_total, c.config_quota) for c in cals], raw)


def undo_calibration(writer: Writer, calibration_id: int) -> stored_calibrations.StoredCalibration:
    """``datacap calibrate undo ID``: the calibration is removed; datacap's own count applies again."""
    with writer.transaction() as conn:
        return stored_calibrations.delete(conn, calibration_id)


def list_calibrations(conn: sqlite3.Connection, cfg: Config, card: str | None) -> dict[str, Any]:
    """``datacap calibrate list --json``: every stored calibration (of one card), oldest first."""
    if card is not None:
        find_card(cfg, card)
    out = []
    for r in stored_calibrations.rows(conn, card):
        cal = Calibration(r.card, r.bucket, dt.datetime.fromtimestamp(r.at, UTC), r.used_bytes, r.source,
                          r.local_used_bytes, r.part, r.carrier_total, r.config_quota, r.id)
        out.append(_cal_json(cal, cfg.tz) | {"created": stored_calibrations.iso_at(r.created, cfg.tz)})
    return {"calibrations": out}


def _cal_json(k: Calibration, tz: dt.tzinfo) -> dict[str, Any]:
    mismatch = mismatch_of(k)
    return {"id": k.id, "card": k.card, "bucket": k.bucket, "target": target_label(k.bucket),
            "at": k.at.astimezone(tz).isoformat(), "carrier_used_bytes": k.used_bytes,
            "local_used_bytes": k.local_used_bytes,
            "drift_bytes": None if k.local_used_bytes is None else k.used_bytes - k.local_used_bytes,
            "source": k.source, "part": k.part, "carrier_total": k.carrier_total, "config_quota": k.config_quota,
            "mismatch": None if mismatch is None else mismatch.to_json()}


def calibration_doc(card: str, cals: list[Calibration], notes: list[str], tz: dt.tzinfo,
                    unmatched: list[Part] | None = None) -> dict[str, Any]:
    """What ``datacap calibrate --json`` (and ``POST /api/v1/calibrate``, ``/api/v1/sms``) answer."""
    mismatches = [m.to_json() for k in cals if (m := mismatch_of(k)) is not None]
    return {"card": card, "notes": notes, "calibrations": [_cal_json(k, tz) for k in cals],
            "carrier_mismatch": mismatches, "unmatched": [p.to_json() for p in unmatched or []]}
