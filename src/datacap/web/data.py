"""The one place the web layer reaches features built elsewhere: plan status, alerts, calibration.

A feature that is not configured (no cards, no alert rules) raises :class:`Unavailable`; routes turn
that into 503 with the message, pages show "not configured", and /metrics leaves its series out.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from datacap import views
from datacap.config import Config
from datacap.errors import DatacapError, InputError
from datacap.store import Writer, open_write
from datacap.store.reader import Reader


class Unavailable(DatacapError):
    """A feature this view needs is not built or not configured on this installation."""


@dataclass(frozen=True, slots=True)
class SmsMessage:
    """A carrier SMS as forwarded by a phone app or pasted into the calibration form."""

    sender: str
    text: str
    received: dt.datetime | None
    card: str | None = None


@dataclass(frozen=True, slots=True)
class CalibrationRequest:
    """A figure read from the carrier (app, USSD, bill): used or remaining bytes of a card's bucket."""

    card: str
    bucket: str | None
    used_bytes: int | None
    remaining_bytes: int | None
    at: dt.datetime


def status(reader: Reader, cfg: Config, card: str | None = None, at: dt.datetime | None = None) -> dict[str, Any]:
    """``datacap status --json`` (issue #4 contract): per card, buckets, pace, forecast, state.

    "Now" is computed once per write to the store (and at most every STATUS_MAX_AGE seconds) for
    every card together, then served to every request and scrape: twenty clients polling the
    overview cost one computation per flush, not twenty per second.
    """
    if not cfg.cards:
        raise Unavailable("no cards configured: add a [[cards]] section to the config to see plan status")
    if at is not None:
        return views.status_json(reader, cfg, card=card, at=at)
    from datacap.status import find_card

    find_card(cfg, card)  # an unknown card is the same error as from the CLI
    doc = _STATUS.now(reader, cfg)
    if card is None:
        return doc
    return {**doc, "cards": [c for c in doc["cards"] if c.get("name") == card]}


STATUS_MAX_AGE = 30.0  # seconds: the daemon's default flush interval


class StatusMemo:
    """The latest all-cards status per store, keyed by the store's write generation and the config."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[Config, str | None, float, dict[str, Any]]] = {}

    def now(self, reader: Reader, cfg: Config) -> dict[str, Any]:
        store = str(reader.conn.execute("PRAGMA database_list").fetchone()[2])
        with self._lock:  # one computation at a time: concurrent requests wait for it and share it
            generation = reader.meta("generation")
            entry = self._entries.get(store)
            if (entry is not None and entry[0] is cfg and entry[1] == generation and generation is not None
                    and 0 <= time.monotonic() - entry[2] < STATUS_MAX_AGE):
                return entry[3]
            doc = views.status_json(reader, cfg)
            self._entries[store] = (cfg, generation, time.monotonic(), doc)
            return doc


_STATUS = StatusMemo()


def _engine(reader: Reader, cfg: Config) -> Any:
    if not cfg.alerts:
        raise Unavailable("no alert rules configured: add [[alerts]] and [channels] to the config")
    from datacap.alerts.engine import AlertEngine

    return AlertEngine(cfg.alerts_config, reader.conn, tz=cfg.tz)


def alerts_list(reader: Reader, cfg: Config) -> dict[str, Any]:
    """``datacap alerts list --json``: rules and their current state."""
    return {"rules": _engine(reader, cfg).rule_states()}


def alerts_history(reader: Reader, cfg: Config, limit: int = 100) -> dict[str, Any]:
    """``datacap alerts history --json``: alerts fired, newest first."""
    return {"alerts": _engine(reader, cfg).history(limit)}


def plan(cfg: Config) -> dict[str, Any]:
    """The resolved config of each card, as the loader validated it (defaults filled in)."""
    cards = [c.model_dump(mode="json") if isinstance(c, BaseModel) else c for c in cfg.cards]
    return {"timezone": cfg.timezone, "week_start": cfg.week_start, "cards": cards}


def calibrate(db_path: Path, cfg: Config, request: CalibrationRequest) -> dict[str, Any]:
    """Record a carrier figure for a card; answers what ``datacap calibrate --json`` prints."""
    from datacap import status as plan_status

    [card] = plan_status.find_card(cfg, request.card)
    writer = _writer(db_path, cfg)
    try:
        reader = Reader(writer.conn, cfg.tz, cfg.week_start_index)
        cal = plan_status.calibrate(writer, reader, card, request.at, used=request.used_bytes,
                                    remaining=request.remaining_bytes, bucket=request.bucket, source="web")
    finally:
        writer.conn.close()
    return plan_status.calibration_doc(card.name, [cal], [], cfg.tz)


def calibrate_sms(db_path: Path, cfg: Config, sms: SmsMessage) -> dict[str, Any]:
    """Read a carrier SMS and calibrate its card (named, or the only one); unreadable text is a 400."""
    from datacap import status as plan_status

    if sms.card is None and len(cfg.cards) != 1:
        known = ", ".join(c.name for c in cfg.cards) or "none configured"
        raise InputError(f"several cards: say which one the SMS is for (card: {known})")
    [card] = plan_status.find_card(cfg, sms.card or cfg.cards[0].name)
    writer = _writer(db_path, cfg)
    try:
        reader = Reader(writer.conn, cfg.tz, cfg.week_start_index)
        source = f"sms:{sms.sender}" if sms.sender else "sms"
        cals, notes = plan_status.calibrate_sms(writer, reader, card, sms.text, sender=sms.sender or None,
                                                now=sms.received, source=source)
    finally:
        writer.conn.close()
    return plan_status.calibration_doc(card.name, cals, notes, cfg.tz)


def _writer(db_path: Path, cfg: Config) -> Writer:
    """A short-lived write connection: the daemon is the main writer, SQLite serialises the two."""
    return Writer(open_write(db_path), cfg.tz, cfg.week_start_index)


def features(cfg: Config) -> dict[str, bool]:
    """Which optional views work here, so pages ask only for what exists (no 503s in the console)."""
    return {"status": bool(cfg.cards), "alerts": bool(cfg.alerts), "calibration": bool(cfg.cards)}
