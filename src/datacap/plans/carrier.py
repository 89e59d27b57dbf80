"""Calibration by part: every part of a carrier text goes where it belongs in the card's plan.

Where each part goes (a bucket's or pack's ``carrier_names`` found in the part's words wins first):

======================  ================================================================
general (通用)           the unscoped cycle buckets (with their rolled-over quota); the one bucket
                        alone when the text states the 结转 part apart from it
scoped (定向/专属)        the services/apps-scoped bucket or pack (named, or the only one)
idle (闲时)              the bucket with ``hours`` (named, or the only one)
pack (加油包)             the pack valid at that instant (named, or the only one)
rollover (结转)           the rolled-over quota of the ``rollover = true`` bucket
overage (套餐外)          the overage
throttle (达量限速)        the throttle's counter (its threshold is compared with ``after``)
all data, local          kept only when nothing else fits (all data: the unscoped buckets of a card
                        without scoped ones); otherwise listed as unmatched
======================  ================================================================

Where a part states both used and remaining, **remaining wins** (what is left is what runs out).
The total it states or implies is compared with the config's quota; a disagreement is kept with the
calibration and shown by ``calibrate``, ``status`` and the ``carrier disagrees`` alert.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from zoneinfo import ZoneInfo

from datacap.errors import InputError
from datacap.model import UsageRecord
from datacap.plans.config import BucketConfig, CardConfig, PackConfig
from datacap.plans.cycles import cycle_at
from datacap.plans.engine import ROLLOVER_PREFIX, Calibration, make_calibration
from datacap.plans.sms import SERVICE_WORDS, Part, SmsReading
from datacap.plans.walk import GENERAL_TARGET, OVERAGE_TARGET, THROTTLE_TARGET, pack_span
from datacap.units import format_bytes

MISMATCH_MIN = 2 * 1024**2  # below this (or 0.5 %), a difference is the carrier's rounding
_TARGET_LABELS = {GENERAL_TARGET: "the unscoped buckets", OVERAGE_TARGET: "overage", THROTTLE_TARGET: "throttle",
                  None: "the unscoped buckets and packs"}


@dataclass(frozen=True, slots=True)
class Mismatch:
    """The carrier's total for a part is not the config's quota for the bucket it calibrates."""

    part: str
    bucket: str
    carrier_total: int
    config_quota: int

    def sentence(self) -> str:
        return (f"the carrier counts {format_bytes(self.carrier_total)} for {self.part}; the config says "
                f"{format_bytes(self.config_quota)} ({self.bucket})")

    def to_json(self) -> dict[str, Any]:
        return {"part": self.part, "bucket": self.bucket, "carrier_total": self.carrier_total,
                "config_quota": self.config_quota, "text": self.sentence()}


@dataclass(frozen=True)
class Applied:
    """What a carrier text did to a card. Unpacks as ``cals, notes`` for older callers."""

    calibrations: list[Calibration]
    notes: list[str]
    unmatched: list[Part] = field(default_factory=list)

    def __iter__(self) -> Iterator[Any]:
        return iter((self.calibrations, self.notes))

    @property
    def mismatches(self) -> list[Mismatch]:
        return [m for c in self.calibrations if (m := mismatch_of(c)) is not None]


def target_label(target: str | None) -> str:
    return _TARGET_LABELS.get(target, target or "")


def differs(carrier_total: int, quota: int) -> bool:
    return abs(carrier_total - quota) > max(MISMATCH_MIN, quota // 200)


def mismatch_of(cal: Calibration, quota: int | None = None) -> Mismatch | None:
    """The disagreement a calibration records (``quota``: the current config's, when it changed since)."""
    if cal.carrier_total is None or cal.config_quota is None or not differs(cal.carrier_total, cal.config_quota):
        return None
    if quota is not None and not differs(cal.carrier_total, quota):
        return None
    shown = cal.config_quota if quota is None else quota
    return Mismatch(cal.part or target_label(cal.bucket), target_label(cal.bucket), cal.carrier_total, shown)


def _mentions(item: BucketConfig | PackConfig, part: Part, *, by_name: bool = True) -> bool:
    """Whether the part's words name the bucket: one of its ``carrier_names`` (or its own name, or the
    Chinese name of one of its services or apps)."""
    words = f"{part.name} {part.text}"
    if any(name in words for name in item.carrier_names or ()):
        return True
    if not by_name:
        return False
    scope = [*(item.services or ()), *(item.apps or ())]
    return item.name in words or any(w in words for s in scope for w in SERVICE_WORDS.get(s, ()))


def _pick(candidates: Sequence[BucketConfig | PackConfig], part: Part) -> str | None:
    named = [c for c in candidates if _mentions(c, part)]
    if len(named) == 1:
        return named[0].name
    return candidates[0].name if len(candidates) == 1 and not named else None


def _target(part: Part, card: CardConfig, reading: SmsReading, at: dt.datetime, tz: ZoneInfo) -> str | None:
    """Where the part belongs in ``card``, or None when nothing fits (see the module's table)."""
    items: list[BucketConfig | PackConfig] = [*card.buckets, *card.packs]
    named = [c for c in items if _mentions(c, part, by_name=False)]
    if len(named) == 1:
        item = named[0]
        to_rollover = isinstance(item, BucketConfig) and item.rollover and part.category == "rollover"
        return ROLLOVER_PREFIX + item.name if to_rollover else item.name
    unscoped = [b for b in card.buckets if not b.scoped]
    separate_rollover = any(p.category == "rollover" and "含" not in p.text for p in reading.parts)
    if part.category == "general":
        if separate_rollover and len(unscoped) == 1:
            return unscoped[0].name
        return GENERAL_TARGET if unscoped else None
    if part.category == "scoped":
        return _pick([c for c in items if c.services or c.apps], part)
    if part.category == "idle":
        return _pick([b for b in items if b.hours], part)
    if part.category == "pack":
        valid = [p for p in card.packs if not p.scoped and pack_span(p, tz)[0] <= at < pack_span(p, tz)[1]]
        return _pick(valid, part)
    if part.category == "rollover":
        rolling = [b for b in card.buckets if b.rollover]
        return ROLLOVER_PREFIX + rolling[0].name if len(rolling) == 1 else None
    if part.category == "overage":
        return OVERAGE_TARGET
    if part.category == "throttle":
        return THROTTLE_TARGET if card.throttle is not None else None
    if part.category == "all" and not any(p.category == "general" for p in reading.parts) \
            and not any(c.scoped for c in items):
        return None if not items else GENERAL_TARGET if unscoped else None
    return None


def _base_quota(card: CardConfig, target: str | None) -> int | None:
    """The config's own quota of a target, without rolled-over quota (None: no single figure)."""
    if target == GENERAL_TARGET:
        quotas = [b.quota for b in card.buckets if not b.scoped]
        return None if not quotas or None in quotas else sum(q for q in quotas if q is not None)
    if target == THROTTLE_TARGET:
        return card.throttle.after if card.throttle else None
    for item in [*card.buckets, *card.packs]:
        if item.name == target:
            return item.quota
    return None


def sms_calibrations(reading: SmsReading, card: CardConfig, records: Sequence[UsageRecord],
                     calibrations: Sequence[Calibration], tz: ZoneInfo, now: dt.datetime, *,
                     at: dt.datetime | None = None, ethernet_ifaces: frozenset[str] | set[str] = frozenset(),
                     known_since: dt.datetime | None = None) -> Applied:
    """Calibrations of ``card`` from every part of the text, notes, and the parts that fit nowhere.

    The instant is the one the text states, else ``at``, else ``now``. Raises InputError when no part
    applies to the card, so nothing is stored.
    """
    instant = reading.at or at or now
    source = f"sms:{reading.sender}" if reading.sender else "sms"
    made: list[Calibration] = []
    notes: list[str] = []
    unmatched: list[Part] = []
    general_target = None
    for part in reading.parts:
        target = _target(part, card, reading, instant, tz)
        if part.category == "rollover" and "含" in part.text and general_target is not None:
            notes.append(f"{part.name} is part of the general figure, which calibrates it")
            continue
        if target is None or (part.used is None and part.remaining is None):
            if part.used is None and part.remaining is None and target is not None:
                _compare_only(part, target, card, notes)
                continue
            unmatched.append(part)
            notes.append(f"{part.name} ({part.category}) matches no bucket of card {card.name!r}: "
                         "name it in a bucket's carrier_names")
            continue
        if target in (t.bucket for t in made):
            notes.append(f"{part.name}: {target_label(target)} already calibrated by an earlier part")
            continue
        if part.category == "general":
            general_target = target
        cal = _calibrate(part, target, card, records, [*calibrations, *made], instant, tz, source,
                         ethernet_ifaces, known_since, notes)
        if cal is not None:
            made.append(cal)
    if not made:
        raise InputError(f"SMS: no part of it applies to card {card.name!r}; nothing was changed"
                         + ("".join(f"; {n}" for n in notes)))
    return Applied(made, notes, unmatched)


def _compare_only(part: Part, target: str, card: CardConfig, notes: list[str]) -> None:
    """A part with a total but no used/remaining figure (the throttle's threshold alone)."""
    quota = _base_quota(card, target)
    if part.total is not None and quota is not None and differs(part.total, quota):
        notes.append(Mismatch(part.name, target_label(target), part.total, quota).sentence())


def _calibrate(part: Part, target: str, card: CardConfig, records: Sequence[UsageRecord],
               calibrations: Sequence[Calibration], instant: dt.datetime, tz: ZoneInfo, source: str,
               ethernet_ifaces: frozenset[str] | set[str], known_since: dt.datetime | None,
               notes: list[str]) -> Calibration | None:
    # Remaining wins: what is left is what runs out. The overage and the throttle count used bytes.
    use_remaining = part.remaining is not None and target not in (OVERAGE_TARGET, THROTTLE_TARGET)
    if not use_remaining and part.used is None:
        notes.append(f"{part.name}: no used figure for {target_label(target)}")
        return None
    try:
        cal = make_calibration(card, records, calibrations, instant, tz, used=None if use_remaining else part.used,
                               remaining=part.remaining if use_remaining else None, bucket=target, source=source,
                               ethernet_ifaces=ethernet_ifaces, known_since=known_since, clamp=True)
    except InputError as err:
        notes.append(f"{part.name} not used: {err}")
        return None
    total = part.implied_total()
    if target == THROTTLE_TARGET:
        total = part.total  # the threshold
    elif total is None and part.remaining is not None and cal.config_quota is not None \
            and part.remaining > cal.config_quota:
        total = part.remaining  # at least: more is left than the config holds
    quota = cal.config_quota
    base = _base_quota(card, target)
    if total is not None and quota is not None and differs(total, quota) and base is not None \
            and not differs(total, base):
        quota = base  # the carrier's total leaves out the rolled-over quota: no disagreement
    cal = replace(cal, part=part.name, carrier_total=cal.carrier_total if total is None else total,
                  config_quota=quota)
    if cal.bucket and cal.bucket.startswith(ROLLOVER_PREFIX) and cal.config_quota is None:
        notes.append(f"{part.name}: what rolled over into this cycle was unknown; from {instant.isoformat()} on it is "
                     f"what the carrier says is left ({format_bytes(cal.carrier_total or 0)})")
    if part.used is not None and use_remaining and quota is not None and total is None and part.used > quota:
        notes.append(f"{part.name}: the carrier counts {format_bytes(part.used)} used of a "
                     f"{format_bytes(quota)} quota")
    mismatch = mismatch_of(cal)
    if mismatch is not None:
        notes.append(mismatch.sentence())
    return cal


def carrier_mismatches(card: CardConfig, calibrations: Sequence[Calibration], at: dt.datetime,
                       tz: ZoneInfo) -> list[Mismatch]:
    """The disagreements of the latest calibration of each target within the cycle holding ``at``."""
    cycle = cycle_at(card.cycle, at, tz)
    latest: dict[str | None, Calibration] = {}
    for cal in sorted(calibrations, key=lambda c: (c.at, c.id or 0)):
        when = cal.at if cal.at.tzinfo else cal.at.replace(tzinfo=tz)
        if cal.card == card.name and cycle.start <= when < cycle.end and when <= at:
            latest[cal.bucket] = cal
    out = []
    for target, cal in latest.items():
        found = mismatch_of(cal, _base_quota(card, target))
        if found is not None:
            out.append(found)
    return out
