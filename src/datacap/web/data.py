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

from datacap.config import Config
from datacap.errors import DatacapError, InputError
from datacap.plans.status_model import StatusDocument
from datacap.query import views
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
    from datacap.query.status import find_card

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


def status_model(reader: Reader, cfg: Config, card: str | None = None,
                 at: dt.datetime | None = None) -> StatusDocument:
    """The typed status (what :func:`status` returns as JSON), for /metrics and the pages."""
    if not cfg.cards:
        raise Unavailable("no cards configured: add a [[cards]] section to the config to see plan status")
    from datacap.query.status import status_model as build

    return build(reader, cfg, card, at)


def cycle(reader: Reader, cfg: Config, card: str | None = None) -> dict[str, Any]:
    """Each card's cycle as the overview's chart draws it: the cumulative general use per day (measured,
    then forecast) from the status model, the general quota, and the alert rules' lines on it."""
    doc = status_model(reader, cfg, card)
    cards = []
    for st in doc.cards:
        quota = st.headline.general.quota
        cards.append({"name": st.name, "label": st.label, "start": st.cycle.to_json()["start"],
                      "end": st.cycle.to_json()["end"], "quota_bytes": quota,
                      "throttle_after_bytes": None if st.throttle is None else st.throttle.after_bytes,
                      "days": [] if st.series is None else st.series.to_json(),
                      "alert_lines": alert_lines(cfg, st.name, quota)})
    return {"at": doc.to_json()["at"], "cards": cards}


def alert_lines(cfg: Config, card: str, quota: int | None) -> list[dict[str, Any]]:
    """Where the card's general-quota alert rules fire, as used bytes: "remaining below 20%" of a
    10 GB quota is a line at 8 GB used. Rules on a bucket, or in percent without a quota, draw none."""
    from datacap.alerts.grammar import RemainingBelow, UsedAbove

    lines = []
    for rule in cfg.alerts:
        if rule.card not in (None, card) or rule.bucket is not None:
            continue
        cond = rule.condition
        if not isinstance(cond, RemainingBelow | UsedAbove):
            continue
        th = cond.threshold
        if th.percent is not None:
            if not quota:
                continue
            amount = quota * th.percent / 100
        else:
            amount = float(th.bytes or 0)
        used = quota - amount if isinstance(cond, RemainingBelow) and quota is not None else amount
        if isinstance(cond, RemainingBelow) and quota is None:
            continue
        lines.append({"when": rule.when, "kind": "remaining_below" if isinstance(cond, RemainingBelow)
                      else "used_above", "percent": th.percent, "bytes": th.bytes, "used_bytes": int(used)})
    return lines


def _engine(reader: Reader, cfg: Config) -> Any:
    if not cfg.alerts:
        raise Unavailable("no alert rules configured: add [[alerts]] and [channels] to the config")
    from datacap.alerts.engine import AlertEngine

    return AlertEngine(cfg.alerts_config, reader.conn, tz=cfg.tz)


def alerts_list(reader: Reader, cfg: Config) -> dict[str, Any]:
    """``datacap alerts list --json``: rules and their current state, plus each rule's condition and
    action as data (``condition``, ``do``), so the page words them in its own language."""
    rules = _engine(reader, cfg).rule_states()
    parsed = {r.key: r for r in cfg.alerts}
    for doc in rules:
        rule = parsed.get(doc["rule"])
        if rule is not None:
            doc["condition"] = condition_json(rule.condition)
            doc["do"] = None if rule.parsed_action is None else action_json(rule.parsed_action)
    return {"rules": rules}


def condition_json(cond: Any) -> dict[str, Any]:
    """An alert condition as data: ``kind`` and its figures (a threshold in percent or bytes)."""
    from datacap.alerts import grammar as g

    match cond:
        case g.RemainingBelow(th) | g.UsedAbove(th):
            kind = "remaining_below" if isinstance(cond, g.RemainingBelow) else "used_above"
            return {"kind": kind, "percent": th.percent, "bytes": th.bytes}
        case g.DaySpike(factor):
            return {"kind": "day_spike", "factor": factor}
        case g.NewEntity(size, kinds):
            return {"kind": "new_entity", "bytes": size, "kinds": list(kinds)}
        case g.CalibrationOlder(seconds):
            return {"kind": "calibration_older", "seconds": seconds}
    names = {g.Exhausted: "exhausted", g.Throttled: "throttled", g.ForecastExhausts: "forecast_exhausts",
             g.CycleReset: "cycle_reset", g.CarrierDisagrees: "carrier_disagrees"}
    return {"kind": names.get(type(cond), type(cond).__name__.lower())}


def action_json(action: Any) -> dict[str, Any]:
    from datacap.alerts import grammar as g

    match action:
        case g.ThrottleAction(rate):
            return {"kind": "throttle", "rate_bps": rate}
        case g.BlockAction():
            return {"kind": "block"}
        case g.SwitchSlotAction(slot):
            return {"kind": "switch_slot", "slot": slot}
        case g.SwitchProfileAction(iccid):
            return {"kind": "switch_profile", "iccid": iccid}
    return {"kind": "unknown"}


def alerts_history(reader: Reader, cfg: Config, limit: int = 100) -> dict[str, Any]:
    """``datacap alerts history --json``: alerts fired, newest first."""
    return {"alerts": _engine(reader, cfg).history(limit)}


def plan(cfg: Config) -> dict[str, Any]:
    """The resolved config of each card, as the loader validated it (defaults filled in)."""
    cards = [c.model_dump(mode="json") if isinstance(c, BaseModel) else c for c in cfg.cards]
    return {"timezone": cfg.timezone, "week_start": cfg.week_start, "cards": cards}


def calibrate(db_path: Path, cfg: Config, request: CalibrationRequest) -> dict[str, Any]:
    """Record a carrier figure for a card; answers what ``datacap calibrate --json`` prints."""
    from datacap.query import status as plan_status

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
    from datacap.query import status as plan_status

    if sms.card is None and len(cfg.cards) != 1:
        known = ", ".join(c.name for c in cfg.cards) or "none configured"
        raise InputError(f"several cards: say which one the SMS is for (card: {known})")
    [card] = plan_status.find_card(cfg, sms.card or cfg.cards[0].name)
    writer = _writer(db_path, cfg)
    try:
        reader = Reader(writer.conn, cfg.tz, cfg.week_start_index)
        source = f"sms:{sms.sender}" if sms.sender else "sms"
        applied = plan_status.calibrate_sms(writer, reader, card, sms.text, sender=sms.sender or None,
                                            now=sms.received, source=source)
    finally:
        writer.conn.close()
    return plan_status.calibration_doc(card.name, applied.calibrations, applied.notes, cfg.tz, applied.unmatched)


def _writer(db_path: Path, cfg: Config) -> Writer:
    """A short-lived write connection: the daemon is the main writer, SQLite serialises the two."""
    return Writer(open_write(db_path), cfg.tz, cfg.week_start_index)


def features(cfg: Config) -> dict[str, bool]:
    """Which optional views work here, so pages ask only for what exists (no 503s in the console)."""
    return {"status": bool(cfg.cards), "alerts": bool(cfg.alerts), "calibration": bool(cfg.cards)}
