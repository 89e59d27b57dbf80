"""Charging pieces of usage to a card's allowances, cycle after cycle (rules: ``datacap.plans.engine``)."""

from __future__ import annotations

import datetime as dt
import difflib
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from datacap.errors import InputError
from datacap.plans.charging import Piece, in_windows
from datacap.plans.config import BucketConfig, CardConfig, PackConfig
from datacap.plans.cycles import Cycle
from datacap.timeutil import local_midnight

if TYPE_CHECKING:
    from datacap.plans.engine import Calibration

ROLLOVER_PREFIX = "rollover:"
# Calibration targets besides a bucket's or pack's name (see datacap.plans.carrier): the unscoped cycle
# buckets together (with their rolled-over quota, not packs), the overage, the throttle's counter.
GENERAL_TARGET = "general:"
OVERAGE_TARGET = "overage:"
THROTTLE_TARGET = "throttle:"
_FAR = 2**62


def pack_span(pack: PackConfig, tz: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    """A pack's validity [start, end) as aware datetimes in ``tz``; `days` count in local wall time."""
    start = pack.start.replace(tzinfo=tz) if pack.start.tzinfo is None else pack.start.astimezone(tz)
    if pack.end is not None:
        end = pack.end.replace(tzinfo=tz) if pack.end.tzinfo is None else pack.end.astimezone(tz)
    else:
        assert pack.days is not None
        # Aware arithmetic in one ZoneInfo is wall-clock arithmetic: 10:00 + 7 days is 10:00 again.
        end = (start + dt.timedelta(days=pack.days)).astimezone(dt.UTC).astimezone(tz)
    return start, end


def windows_for(hours: tuple[int, int], since: dt.date, until: dt.date, tz: ZoneInfo) -> list[int]:
    """Flat sorted epochs [start, end, start, end, ...] of a daily local window over the dates."""
    begin, finish = hours
    out: list[int] = []
    day = since
    while day <= until:
        start = dt.datetime.combine(day, dt.time(begin // 60, begin % 60), tzinfo=tz)
        if finish == 1440:
            end = local_midnight(day + dt.timedelta(days=1), tz)
        else:
            end_day = day if finish > begin else day + dt.timedelta(days=1)
            end = dt.datetime.combine(end_day, dt.time(finish // 60, finish % 60), tzinfo=tz)
        a, b = int(start.timestamp()), int(end.timestamp())
        if b > a and (not out or a >= out[-1]):
            out += [a, b]
        day += dt.timedelta(days=1)
    return out


class Allowance:
    """Runtime state of one bucket, rolled-over quota or pack."""

    __slots__ = ("base", "end", "index", "key", "kind", "mask", "name", "quota", "scoped", "start", "used",
                 "windows")

    def __init__(self, name: str, kind: str, quota: int | None, start: int, end: int, mask: int,
                 cfg: BucketConfig | PackConfig, index: int, windows: list[int] | None) -> None:
        self.name, self.kind, self.quota, self.start, self.end = name, kind, quota, start, end
        self.mask, self.index, self.windows, self.used = mask, index, windows, 0
        self.base = 0  # a pack's use in earlier cycles: not part of this cycle's count
        self.scoped = cfg.scoped
        prio = cfg.priority
        # Sort key of the documented consumption order.
        self.key = (prio is None, prio or 0, not self.scoped, end, kind != "rollover", index)

    def active(self, instant: int) -> bool:
        return self.start <= instant < self.end

    @property
    def left(self) -> int | None:
        return None if self.quota is None else max(0, self.quota - self.used)


@dataclass
class CycleState:
    """What one cycle's charging produced."""

    cycle: Cycle
    allowances: list[Allowance]
    used: int = 0
    overage_by_day: dict[int, int] = field(default_factory=dict)
    throttled_since: int | None = None
    calibration: tuple[Calibration, int] | None = None  # latest applied, with datacap's count then
    general_out_at: int | None = None  # when the general (unscoped) allowances last ran dry
    throttle_offset: int = 0  # the carrier's throttle counter minus datacap's count, once calibrated
    rollover_unknown: tuple[str, ...] = ()  # rollover buckets whose last cycle datacap does not know

    @property
    def overage(self) -> int:
        return sum(self.overage_by_day.values())

    @property
    def throttle_count(self) -> int:
        """What the throttle's threshold is compared with: the cycle's usage, or the carrier's counter."""
        return self.used + self.throttle_offset


class Walker:
    """Charges the pieces of [since, until) cycle by cycle, keeping packs and rollover across cycles."""

    def __init__(self, card: CardConfig, tz: ZoneInfo, since: dt.datetime, until: dt.datetime,
                 cycles: Sequence[Cycle], calibrations: Sequence[Calibration],
                 known_since: dt.datetime | None) -> None:
        self.card, self.tz = card, tz
        self.lo, self.hi = int(since.timestamp()), int(until.timestamp())
        self.known_since = int(known_since.timestamp()) if known_since else None
        first_day = since.astimezone(tz).date()
        last_day = until.astimezone(tz).date()
        self.midnights = [int(local_midnight(first_day + dt.timedelta(days=n), tz).timestamp())
                          for n in range((last_day - first_day).days + 2)]
        nb = len(card.buckets)
        self.windows: list[list[int] | None] = [
            windows_for(c.hours, first_day - dt.timedelta(days=1), last_day + dt.timedelta(days=1), tz)
            if c.hours else None for c in [*card.buckets, *card.packs]]
        self.packs: list[Allowance] = []
        for j, cfg in enumerate(card.packs):
            ps, pe = pack_span(cfg, tz)
            k = nb + j
            self.packs.append(Allowance(cfg.name, "pack", cfg.quota, int(ps.timestamp()), int(pe.timestamp()),
                                        1 << k, cfg, k, self.windows[k]))
        self.calibrations = list(calibrations)
        self._cal_at = [int(c.at.timestamp()) for c in self.calibrations]
        breaks = set(self.midnights) | set(self._cal_at)
        for cycle in cycles:
            breaks |= {cycle.start_epoch, cycle.end_epoch}
        for pack in self.packs:
            breaks |= {pack.start, pack.end}
        for windows in self.windows:
            breaks.update(windows or ())
        self.breaks = sorted(breaks)
        self.total_by_day: dict[int, int] = {}
        self.general_by_day: dict[int, int] = {}
        # Bytes each configured bucket or pack (its index; a rolled-over quota shares its bucket's) took
        # per local day: the history the forecast of that allowance is fitted on.
        self.taken_by_day: dict[int, dict[int, int]] = {}
        self.rollover_in: dict[int, int] = {}
        self.rollover_unknown: tuple[str, ...] = ()
        self.state: CycleState | None = None
        self._starts: list[int] | None = None

    def _allowances(self, cycle: Cycle) -> list[Allowance]:
        cs, ce = cycle.start_epoch, cycle.end_epoch
        out: list[Allowance] = []
        for i, bucket in enumerate(self.card.buckets):
            out.append(Allowance(bucket.name, "bucket", bucket.quota, cs, ce, 1 << i, bucket, i,
                                 self.windows[i]))
            if self.rollover_in.get(i):  # nothing left over: no rollover bucket
                out.append(Allowance(bucket.name, "rollover", self.rollover_in[i], cs, ce, 1 << i, bucket, i,
                                     self.windows[i]))
        for pack in self.packs:
            if pack.start < ce and pack.end > cs:
                pack.base = pack.used
                out.append(pack)
        out.sort(key=lambda a: a.key)
        return out

    def charge_cycle(self, cycle: Cycle, pieces: Sequence[Piece]) -> None:
        """Charge the pieces starting in ``cycle`` and the calibrations inside it."""
        cs, ce = cycle.start_epoch, cycle.end_epoch
        state = CycleState(cycle, self._allowances(cycle), rollover_unknown=self.rollover_unknown)
        order = state.allowances
        after = self.card.throttle.after if self.card.throttle else _FAR
        if self._starts is None:
            self._starts = [p[0] for p in pieces]
        # A calibration at a cycle's first instant ("截至30日24时") is the end of the cycle before.
        cal_at, ci, nc = self._cal_at, bisect_right(self._cal_at, cs), len(self._cal_at)
        total, general, overage = self.total_by_day, self.general_by_day, state.overage_by_day
        taken = self.taken_by_day
        for k in range(bisect_left(self._starts, cs), bisect_left(self._starts, ce)):
            t0, t1, sig, amount, day = pieces[k]
            while ci < nc and cal_at[ci] <= t0:
                self._apply(state, self.calibrations[ci], cal_at[ci])
                ci += 1
            left = amount
            scoped_taken = 0
            filled = False
            for a in order:
                if not (sig & a.mask) or not (a.start <= t0 < a.end):
                    continue
                if a.windows is not None and not in_windows(a.windows, t0):
                    continue
                if a.quota is None:
                    take = left
                else:
                    take = min(left, a.quota - a.used)
                    if take <= 0:
                        continue
                a.used += take
                left -= take
                series = taken.setdefault(a.index, {})
                series[day] = series.get(day, 0) + take
                if a.scoped:
                    scoped_taken += take
                elif a.quota is not None and a.used >= a.quota:
                    filled = True
                if not left:
                    break
            if left:
                overage[day] = overage.get(day, 0) + left
                if state.general_out_at is None:
                    state.general_out_at = t0 + (t1 - t0) * (amount - left) // amount
            elif filled and self._general_empty(state, t0):
                state.general_out_at = t0 + (t1 - t0) * (amount - left) // amount
            count = state.throttle_count
            if count < after <= count + amount:
                state.throttled_since = t0 + (t1 - t0) * (after - count) // amount
            state.used += amount
            total[day] = total.get(day, 0) + amount
            general[day] = general.get(day, 0) + amount - scoped_taken
        while ci < nc and cal_at[ci] <= ce:
            self._apply(state, self.calibrations[ci], cal_at[ci])
            ci += 1
        self.state = state
        rolling = [a for a in order if a.kind == "bucket" and self.card.buckets[a.index].rollover]
        known = {a.index for a in rolling if self._known(a.name, cs, ce)}
        self.rollover_in = {a.index: a.left or 0 for a in rolling if a.index in known}
        self.rollover_unknown = tuple(a.name for a in rolling if a.index not in known)

    def _known(self, name: str, cs: int, ce: int) -> bool:
        """Whether what the bucket left at the cycle's end is known: the store saw the whole cycle, or
        the carrier's count of it at an instant from which on the store saw everything."""
        if self.known_since is None or cs >= self.known_since:
            return True
        covering = (None, GENERAL_TARGET, name)
        return any(cs < at <= ce and at >= self.known_since and c.bucket in covering
                   for c, at in zip(self.calibrations, self._cal_at, strict=True))

    def _find(self, state: CycleState, bucket: str) -> Allowance | None:
        kind, name = ("rollover", bucket[len(ROLLOVER_PREFIX):]) if bucket.startswith(ROLLOVER_PREFIX) \
            else (None, bucket)
        for a in state.allowances:
            if a.name == name and (a.kind == "rollover") == (kind == "rollover"):
                return a
        return None

    def _general(self, state: CycleState, at: int) -> tuple[list[Allowance], int]:
        """Unscoped allowances active at ``at``, and what those already over used in this cycle."""
        unscoped = [a for a in state.allowances if not a.scoped and a.start <= at]
        return [a for a in unscoped if at < a.end], sum(a.used - a.base for a in unscoped if a.end <= at)

    @staticmethod
    def _general_empty(state: CycleState, at: int) -> bool:
        """Whether every unscoped allowance active at ``at`` is finite and used up."""
        active = [a for a in state.allowances if not a.scoped and a.start <= at < a.end]
        return all(a.quota is not None and a.used >= a.quota for a in active)

    def _apply(self, state: CycleState, cal: Calibration, at: int) -> None:
        self._recount(state, cal, at)
        if not self._general_empty(state, at):
            state.general_out_at = None
        elif state.general_out_at is None:
            state.general_out_at = at
        after = self.card.throttle.after if self.card.throttle else _FAR
        if state.throttle_count < after:
            state.throttled_since = None
        elif state.throttled_since is None:
            state.throttled_since = at

    def _recount(self, state: CycleState, cal: Calibration, at: int) -> None:
        if cal.bucket in (GENERAL_TARGET, OVERAGE_TARGET, THROTTLE_TARGET):
            self._recount_part(state, cal, at)
            return
        if cal.bucket is not None:
            target = self._find(state, cal.bucket)
            if target is None and cal.bucket.startswith(ROLLOVER_PREFIX):
                self._late_rollover(state, cal, at)
                return
            if target is None:
                return  # the bucket is no longer configured: nothing to correct
            before = target.used
            cap = cal.used_bytes if target.quota is None else min(cal.used_bytes, target.quota)
            target.used = max(0, cap)
            state.used += target.used - before
            state.calibration = (cal, before)
            return
        active, fixed = self._general(state, at)
        before = sum(a.used - a.base for a in active) + fixed + state.overage
        rest = max(0, cal.used_bytes - fixed)
        for a in active:
            share = rest if a.quota is None else min(a.quota - a.base, rest)
            a.used = a.base + share
            rest -= share
        self._set_overage(state, rest, at)
        # A pack that already ended keeps its count, so the figure cannot take the total below it.
        state.used += max(cal.used_bytes, fixed) - before
        state.calibration = (cal, before)

    def _late_rollover(self, state: CycleState, cal: Calibration, at: int) -> None:
        """The carrier's 结转 figure for a rolled-over quota datacap could not derive (its history began
        inside the cycle before): from ``at`` on, what the carrier says is left (``carrier_total``)."""
        name = cal.bucket[len(ROLLOVER_PREFIX):] if cal.bucket else ""
        index = next((i for i, b in enumerate(self.card.buckets) if b.name == name), None)
        if index is None or name not in state.rollover_unknown or cal.carrier_total is None:
            return
        bucket = self.card.buckets[index]
        late = Allowance(name, "rollover", cal.carrier_total, at, state.cycle.end_epoch, 1 << index, bucket, index,
                         self.windows[index])
        state.allowances.append(late)
        state.allowances.sort(key=lambda a: a.key)  # in place: the charging loop holds this list
        state.rollover_unknown = tuple(n for n in state.rollover_unknown if n != name)
        state.calibration = (cal, 0)

    def _cycle_buckets(self, state: CycleState, at: int) -> list[Allowance]:
        """The unscoped cycle buckets and their rolled-over quota active at ``at``, in consumption order."""
        return [a for a in state.allowances if not a.scoped and a.kind != "pack" and a.start <= at < a.end]

    def _recount_part(self, state: CycleState, cal: Calibration, at: int) -> None:
        if cal.bucket == OVERAGE_TARGET:
            before = state.overage
            self._set_overage(state, cal.used_bytes, at)
            state.used += cal.used_bytes - before
        elif cal.bucket == THROTTLE_TARGET:
            before = state.throttle_count
            state.throttle_offset = cal.used_bytes - state.used
        else:
            # The carrier's general figure: what exceeds these quotas went to packs or overage, which
            # keep datacap's count unless the text states their own figures.
            active = self._cycle_buckets(state, at)
            before = sum(a.used for a in active)
            rest = cal.used_bytes
            for a in active:
                share = rest if a.quota is None else min(a.quota, rest)
                a.used = share
                rest -= share
            state.used += cal.used_bytes - rest - before
        state.calibration = (cal, before)

    def _set_overage(self, state: CycleState, amount: int, at: int) -> None:
        diff = amount - state.overage
        days = state.overage_by_day
        if diff > 0:
            day = self.midnights[max(0, bisect_left(self.midnights, at + 1) - 1)]
            days[day] = days.get(day, 0) + diff
        for day in sorted(days, reverse=True):
            if diff >= 0:
                break
            cut = min(days[day], -diff)
            days[day] -= cut
            diff += cut

    def calibration_target(self, bucket: str | None, at: int) -> tuple[int, int | None]:
        """Datacap's count and the quota a calibration at ``at`` (the walk's end) would replace."""
        state = self.state
        assert state is not None
        if bucket == OVERAGE_TARGET:
            return state.overage, None
        if bucket == THROTTLE_TARGET:
            if self.card.throttle is None:
                raise InputError(f"calibrate: card {self.card.name!r} has no [throttle] configured")
            return state.throttle_count, self.card.throttle.after
        if bucket == GENERAL_TARGET:
            buckets = self._cycle_buckets(state, at)
            if not buckets:
                raise InputError(f"calibrate: card {self.card.name!r} has no unscoped bucket")
            unlimited = any(a.quota is None for a in buckets)
            return sum(a.used for a in buckets), None if unlimited else sum(a.quota or 0 for a in buckets)
        if bucket is not None:
            target = self._find(state, bucket)
            if target is None:
                known = sorted({a.name if a.kind != "rollover" else ROLLOVER_PREFIX + a.name
                                for a in state.allowances})
                close = difflib.get_close_matches(bucket, known, n=3, cutoff=0.6)
                hint = f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
                raise InputError(f"calibrate --bucket: expected one of {', '.join(known) or '(no buckets)'}, "
                                 f"found {bucket!r}{hint}")
            return target.used, target.quota
        active, fixed = self._general(state, at)
        if not active:
            raise InputError(f"calibrate: card {self.card.name!r} has no unscoped bucket or pack active "
                             "at that instant; name one with --bucket")
        # In this cycle's terms: a pack that began earlier brings what it had left then.
        quota: int | None = fixed
        for a in active:
            quota = None if quota is None or a.quota is None else quota + a.quota - a.base
        return sum(a.used - a.base for a in active) + fixed + state.overage, quota
