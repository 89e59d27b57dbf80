"""The plan engine: usage records + card config + calibrations + an instant -> the card's status.

Pure: no I/O, no clock. The caller (CLI, daemon, web) fetches the records for the range that
:func:`records_needed` returns, for this card's interfaces, and calls :func:`compute_status`.

Charging rules (issue #4). Every counted byte, at its instant, goes to exactly one place: among the
allowances (cycle buckets, rolled-over quota, packs) active at that instant whose scope matches and
which have quota left, in this order:

1. allowances with an explicit ``priority`` first, lower first; then those without, in the default
   order: scoped before unscoped; the one that expires soonest; on a tie rolled-over quota before the
   cycle's own; then config order (buckets, then packs);
2. what none takes is overage.

A record is split by time where an allowance starts or ends or an ``hours`` window opens or closes
within it, and by bytes where an allowance runs out within it. Rolled-over quota is what a
``rollover = true`` bucket left unused in the previous cycle; it lasts the next cycle only. To know
it, the engine charges up to two cycles before the current one (``ROLLOVER_DEPTH``): the oldest of
them starts without any rollover (its own predecessor is unknown).

A calibration (the carrier's own figure) at instant T replaces the engine's count up to T: for one
allowance when it names one, otherwise for the unscoped allowances together (the carrier's
"general" figure), whose total is redistributed in consumption order, what exceeds their quotas
being overage. Usage after T adds on.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any
from zoneinfo import ZoneInfo

from datacap.errors import InputError
from datacap.model import UsageRecord
from datacap.plans.charging import prepare, split
from datacap.plans.config import CardConfig
from datacap.plans.cycles import Cycle, cycle_at, next_cycle, previous_cycle
from datacap.plans.report import build_status
from datacap.plans.status_model import CardStatus
from datacap.plans.walk import ROLLOVER_PREFIX, Walker, pack_span
from datacap.timeutil import local_midnight

ROLLOVER_DEPTH = 2
HISTORY_DAYS = 28


@dataclass(frozen=True, slots=True)
class Calibration:
    """The carrier's own count of a card's usage at an instant.

    ``bucket`` names a bucket or pack (``"rollover:NAME"`` for NAME's rolled-over quota), or is None
    for the unscoped allowances together. ``used_bytes`` is the carrier's figure for the cycle up to
    ``at`` (a "remaining" figure is converted with the quota by :func:`make_calibration`).
    ``local_used_bytes`` is datacap's count it corrected, so the drift can be shown.
    """

    card: str
    bucket: str | None
    at: dt.datetime
    used_bytes: int
    source: str = "cli"
    local_used_bytes: int | None = None
    # From a carrier text (datacap.plans.carrier): the carrier's name for the part, the total it
    # states or implies, and the config's quota of the target then; ``id`` once stored.
    part: str | None = None
    carrier_total: int | None = None
    config_quota: int | None = None
    id: int | None = None


def _aware(value: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    return value.replace(tzinfo=tz) if value.tzinfo is None else value


def _walk_range(card: CardConfig, at: dt.datetime,
                tz: ZoneInfo) -> tuple[Cycle, Cycle, dt.datetime, dt.datetime]:
    """(current cycle, first cycle to charge, since, until)."""
    current = cycle_at(card.cycle, at, tz)
    until = min(at, current.end)
    first = current
    for _ in range(ROLLOVER_DEPTH):
        prev = previous_cycle(card.cycle, first, tz)
        if prev is None:
            break
        first = prev
    history_start = until.astimezone(tz).date() - dt.timedelta(days=HISTORY_DAYS)
    since = min(first.start, local_midnight(history_start, tz))
    for pack in card.packs:
        start, end = pack_span(pack, tz)
        if start < until and end > since:
            since = min(since, start)
    if card.cycle.start is not None:
        # Before its first day the card was not in use: usage then belongs to something else.
        since = max(since, local_midnight(card.cycle.start, tz))
    if current.state == "not_started":
        since = until = current.start
    while first.start > since:
        prev = previous_cycle(card.cycle, first, tz)
        if prev is None:
            break
        first = prev
    # The oldest cycle is charged whole, or what it leaves over for the next would be too much.
    return current, first, min(since, first.start), until


def records_needed(card: CardConfig, at: dt.datetime, tz: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    """The time range [since, until) of usage records :func:`compute_status` needs for ``at``: the
    current cycle, the two before it (rollover), at least 28 days of history (forecast) and the whole
    validity of packs still relevant. Records outside it are ignored, so passing more is harmless.
    Each byte must come once: any resolution (5-minute, hourly, or a mix over different periods),
    but never the same period at two resolutions."""
    _, _, since, until = _walk_range(card, at, tz)
    return since, until


def _run(card: CardConfig, records: Sequence[UsageRecord], calibrations: Sequence[Calibration],
         at: dt.datetime, tz: ZoneInfo, ethernet_ifaces: frozenset[str] | set[str],
         known_since: dt.datetime | None) -> tuple[Walker, Cycle, dt.datetime, dt.datetime]:
    at = _aware(at, tz)
    current, first, since, until = _walk_range(card, at, tz)
    lo, hi = int(since.timestamp()), int(until.timestamp())
    # A calibration without an offset is in the config's zone, like every other naive time.
    cals = sorted((replace(c, at=_aware(c.at, tz)) for c in calibrations if c.card == card.name),
                  key=lambda c: c.at)
    cals = [c for c in cals if lo <= int(c.at.timestamp()) <= hi]
    cycles = [first]
    while cycles[-1].start < current.start:
        nxt = next_cycle(card.cycle, cycles[-1], tz)
        if nxt is None:
            break
        cycles.append(nxt)
    cycles[-1] = current
    walker = Walker(card, tz, since, until, cycles, cals, known_since)
    merged = prepare(card, records, lo, hi, ethernet_ifaces)
    pieces = split(merged, walker.breaks, walker.midnights)
    for cycle in cycles:
        walker.charge_cycle(cycle, pieces)
    return walker, current, since, until


def compute_status(card: CardConfig, records: Sequence[UsageRecord], calibrations: Sequence[Calibration],
                   at: dt.datetime, tz: ZoneInfo, *, ethernet_ifaces: frozenset[str] | set[str] = frozenset(),
                   known_since: dt.datetime | None = None) -> dict[str, Any]:
    """The card object of ``datacap status --json`` at ``at`` (the JSON of :func:`card_status`)."""
    return card_status(card, records, calibrations, at, tz, ethernet_ifaces=ethernet_ifaces,
                       known_since=known_since).to_json()


def card_status(card: CardConfig, records: Sequence[UsageRecord], calibrations: Sequence[Calibration],
                at: dt.datetime, tz: ZoneInfo, *, ethernet_ifaces: frozenset[str] | set[str] = frozenset(),
                known_since: dt.datetime | None = None) -> CardStatus:
    """The typed status of a card at ``at`` (see :mod:`datacap.plans.status_model`).

    ``records``: this card's interfaces' usage, at least for :func:`records_needed`; any resolution.
    ``ethernet_ifaces``: interfaces with Ethernet framing, for ``l2_overhead = "auto"``.
    ``known_since``: when the store's history of this card begins; days before it are not taken as
    zero usage by the forecast, and no rollover is derived from a cycle that began before it.
    """
    walker, current, _, until = _run(card, records, calibrations, at, tz, ethernet_ifaces, known_since)
    return build_status(card, walker, current, _aware(at, tz), until, tz, known_since)


def make_calibration(card: CardConfig, records: Sequence[UsageRecord], calibrations: Sequence[Calibration],
                     at: dt.datetime, tz: ZoneInfo, *, used: int | None = None, remaining: int | None = None,
                     bucket: str | None = None, source: str = "cli",
                     ethernet_ifaces: frozenset[str] | set[str] = frozenset(),
                     known_since: dt.datetime | None = None, clamp: bool = False) -> Calibration:
    """A calibration from the carrier's used or remaining figure, with datacap's count at ``at`` and the
    target's quota filled in. Raises InputError when the bucket is unknown or a remaining figure cannot
    be converted; with ``clamp``, a remaining figure above the quota means nothing used (the caller
    reports the disagreement). An instant at a cycle's first second is the end of the cycle before."""
    if (used is None) == (remaining is None):
        raise InputError("calibrate: expected exactly one of --used or --remaining")
    at = _aware(at, tz)
    if at == cycle_at(card.cycle, at, tz).start:
        at -= dt.timedelta(seconds=1)
    earlier = [c for c in calibrations if _aware(c.at, tz) <= at]
    walker, current, _, _ = _run(card, records, earlier, at, tz, ethernet_ifaces, known_since)
    if current.state != "active":
        state = current.state.replace("_", " ")
        raise InputError(f"calibrate: card {card.name!r} is {state} at {at.isoformat()}")
    assert walker.state is not None
    if bucket is not None and bucket.startswith(ROLLOVER_PREFIX) and remaining is not None \
            and bucket[len(ROLLOVER_PREFIX):] in walker.state.rollover_unknown:
        # What rolled over is unknown, what is left of it now is not: it counts from this instant on.
        return Calibration(card.name, bucket, at, 0, source, 0, carrier_total=remaining)
    local, quota = walker.calibration_target(bucket, int(at.timestamp()))
    if remaining is not None:
        if quota is None:
            raise InputError(f"calibrate: {bucket or 'the unscoped buckets'} of card {card.name!r} "
                             "include an unlimited quota, so a remaining figure cannot be converted; "
                             "use --used")
        if remaining > quota and not clamp:
            raise InputError(f"calibrate: expected a remaining figure up to the quota of {quota} bytes, "
                             f"found {remaining}")
        used = max(0, quota - remaining)
    assert used is not None
    return Calibration(card.name, bucket, at, used, source, local, config_quota=quota)


def with_local(cal: Calibration, local: int) -> Calibration:
    """A copy of ``cal`` carrying datacap's count it corrects."""
    return replace(cal, local_used_bytes=local)


__all__ = ["ROLLOVER_PREFIX", "Calibration", "card_status", "compute_status", "make_calibration", "records_needed",
           "with_local"]
