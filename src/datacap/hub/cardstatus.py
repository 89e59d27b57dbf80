"""A card's plan status on the hub: the device's own plan engine over the rows the device pushed.

Nothing here computes a figure of its own: the records go through :func:`datacap.query.status.select_records`
(the rule that decides which bytes are the card's) into :func:`datacap.plans.compute_status`, in the
device's timezone, with the device's calibrations, so ``GET /api/v1/cards/DEV/CARD/status`` equals the
device's ``datacap status --json --card CARD`` for the same usage.

Known gaps (the batch does not carry them): the interfaces' link types, so ``l2_overhead = "auto"``
counts no framing overhead on the hub; and the instant the device first saw an interface, for which
the hub takes the start of the first 5-minute row it received.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from datacap.alerts.rules import CardHistory, select_targets
from datacap.hub.store.base import CardRow, CardSummary, HubStore
from datacap.model import UsageRecord
from datacap.plans import CardConfig, compute_status, records_needed, status_document
from datacap.plans.cycles import cycle_at, previous_cycle
from datacap.query.status import select_records
from datacap.timeutil import UTC, load_zone

FIVE_MINUTES = 300
TRAILING_DAYS = 14


@dataclass(frozen=True, slots=True)
class CardResult:
    status: dict[str, Any]          # the card object of `status --json`
    summary: CardSummary
    history: CardHistory


def plan_of(row: CardRow) -> CardConfig:
    return CardConfig.model_validate(row.plan)


def compute(store: HubStore, row: CardRow, at: dt.datetime) -> CardResult:
    """The card's status at ``at`` with the figures the fleet table and the alert rules need."""
    card = plan_of(row)
    tz = load_zone(row.timezone or "UTC")
    at = at.astimezone(tz)
    since, until = records_needed(card, at, tz)
    lo = min(int(since.timestamp()), int((at - dt.timedelta(days=TRAILING_DAYS + 1)).timestamp()))
    rows = store.usage_rows(row.device, lo - lo % FIVE_MINUTES, int(until.timestamp()))
    records = [UsageRecord(start, FIVE_MINUTES, iface, rx, tx, card=stamp or None)
               for start, iface, stamp, rx, tx in rows]
    mine = select_records(card, records)
    firsts = [s for iface, s in store.first_usage(row.device).items() if card.matches(iface)]
    known_since = dt.datetime.fromtimestamp(min(firsts), UTC) if firsts else None
    status = compute_status(card, select_records(card, mine, at), store.calibrations(row.device, card.name), at,
                            tz, known_since=known_since)
    return CardResult(status, summarize(status), history(card, mine, at, tz))


def status_doc(store: HubStore, row: CardRow, at: dt.datetime | None = None) -> dict[str, Any]:
    """``status --json`` for this one card, as the device prints it."""
    tz = load_zone(row.timezone or "UTC")
    at = (at or dt.datetime.now(UTC)).astimezone(tz)
    return status_document(at, [compute(store, row, at).status])


def _epoch(text: Any) -> int | None:
    return int(dt.datetime.fromisoformat(text).timestamp()) if isinstance(text, str) and text else None


def summarize(status: dict[str, Any]) -> CardSummary:
    """What the fleet table sorts on: the unscoped quota together, as the alert rules see it."""
    target = select_targets(status, None, "en")[0]
    fraction = None
    if target.quota and target.remaining is not None:
        fraction = max(0.0, target.remaining / target.quota)
    return CardSummary(
        state=str(status.get("state", "active")), used_bytes=int(status.get("used_bytes", 0)),
        quota_bytes=target.quota, remaining_bytes=target.remaining, remaining_fraction=fraction,
        exhausts_at=_epoch((status.get("forecast") or {}).get("exhausted_at")),
        cycle_end=_epoch((status.get("cycle") or {}).get("end")), throttled=bool(status.get("throttled")),
        overage_bytes=int(status.get("overage_bytes") or 0))


def history(card: CardConfig, records: list[UsageRecord], at: dt.datetime, tz: dt.tzinfo) -> CardHistory:
    """Daily totals for the day-based rules (spike, cycle reset), from the same rows as the status."""
    daily: dict[dt.date, int] = defaultdict(int)
    for r in records:
        daily[dt.datetime.fromtimestamp(r.start, tz).date()] += r.total_bytes
    today = at.astimezone(tz).date()
    trailing = [(d, daily.get(d, 0)) for d in (today - dt.timedelta(days=i) for i in range(TRAILING_DAYS, 0, -1))]
    last_total = None
    zone = load_zone(str(tz))
    current = cycle_at(card.cycle, at, zone)
    previous = previous_cycle(card.cycle, current, zone) if current.state == "active" else None
    if previous is not None and records and records[0].start <= previous.start.timestamp():
        lo, hi = previous.start.timestamp(), previous.end.timestamp()
        last_total = sum(r.total_bytes for r in records if lo <= r.start < hi)
    return CardHistory(trailing_days=trailing, today_bytes=daily.get(today, 0), last_cycle_total=last_total)
