"""The `[[cards]]` part of datacap's config: data plans as carriers sell them.

Every model forbids unknown keys, and every validator says what it expected and what it found, so the
integrator's formatter can prefix the key path (``cards[0].buckets[1].quota``) and the file/line.
Sizes are bytes after validation (``None`` = unlimited); rates are bit/s; hours windows are minutes of
the local day. Datetimes without an offset (TOML local date-times) are read in the config's timezone
by the engine, so they are kept naive here.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from datacap.errors import InputError
from datacap.plans.carrier_query import CarrierConfig
from datacap.units import parse_rate, parse_size

NAME_RE = re.compile(r"^[a-z0-9_-]+$")
_HOURS_RE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
_ICCID_RE = re.compile(r"^\d{18,22}$")
_CURRENCY_RE = re.compile(r"^[A-Z]{3}$")


def _fail(message: str, **context: Any) -> PydanticCustomError:
    # A custom error keeps pydantic from prefixing "Value error, " to our message. The message is
    # formatted here (pydantic's templates know no !r) and passed without context, so braces in a
    # user's value are shown as they are.
    return PydanticCustomError("datacap", message.format(**context) if context else message)


def _fail_at(loc: tuple[str | int, ...], found: Any, message: str, **context: Any) -> ValidationError:
    """An error at a key below the model being validated (pydantic prefixes the outer path), so a
    cross-field rule names the very key and line to fix rather than the whole table."""
    error = InitErrorDetails(type=_fail(message, **context), loc=loc, input=found)
    return ValidationError.from_exception_data("datacap", [error])


def _size(value: Any) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise _fail("expected a size like '5 GB', found {found}", found=repr(value))
    try:
        return parse_size(value)
    except InputError as err:
        raise _fail(str(err)) from None


def _quota(value: Any) -> int | None:
    if isinstance(value, str) and value.strip().lower() == "unlimited":
        return None
    try:
        return _size(value)
    except PydanticCustomError as err:
        if "up to" in err.message():  # a size, but beyond any plan: say so rather than "expected a size"
            raise
        raise _fail("expected a size like '5 GB' or \"unlimited\", found {found}",
                    found=repr(value)) from None


def _positive_size(value: Any) -> int:
    size = _size(value)
    if size <= 0:
        raise _fail("expected a size above zero like '1 MB', found {found}", found=repr(value))
    return size


def _rate(value: Any) -> int:
    if not isinstance(value, str):
        raise _fail("expected a rate like '1 Mbit/s', found {found}", found=repr(value))
    try:
        return parse_rate(value)
    except InputError as err:
        raise _fail(str(err)) from None


def _hours(value: Any) -> tuple[int, int]:
    """``"23:00-07:00"`` -> (1380, 420): minutes of the local day; the window may wrap midnight."""
    if isinstance(value, tuple):
        return value
    match = _HOURS_RE.match(value) if isinstance(value, str) else None
    bad = "expected a local time window 'HH:MM-HH:MM' like '23:00-07:00', found {found}"
    if not match:
        raise _fail(bad, found=repr(value))
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or m1 > 59 or m2 > 59 or h2 > 24 or (h2 == 24 and m2 != 0):
        raise _fail(bad, found=repr(value))
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if start == end % 1440:
        raise _fail("expected a window of less than a whole day (leave `hours` out for all day), "
                    "found {found}", found=repr(value))
    return start, end


def _date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        raise _fail("expected a date like 2026-10-20 (no time of day), found {found}",
                    found=value.isoformat())
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise _fail("expected a date like 2026-10-20, found {found}", found=repr(value))


def _datetime(value: Any) -> dt.datetime:
    # A bare date means its local midnight; naive values are read in the config timezone later.
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time())
    if isinstance(value, str):
        text = value.strip()
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        try:
            return dt.datetime.fromisoformat(text)
        except ValueError:
            pass
    raise _fail("expected a date-time like 2026-11-20T10:00:00+08:00, found {found}", found=repr(value))


def _name(value: Any) -> str:
    if not isinstance(value, str) or not NAME_RE.match(value):
        raise _fail("expected an identifier of lower-case letters, digits, '-' and '_', found {found}",
                    found=repr(value))
    return value


def _label(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _fail("expected a non-empty name, found {found}", found=repr(value))
    return value.strip()


Size = Annotated[int, BeforeValidator(_size)]
PositiveSize = Annotated[int, BeforeValidator(_positive_size)]
Quota = Annotated[int | None, BeforeValidator(_quota)]
Rate = Annotated[int, BeforeValidator(_rate)]
Hours = Annotated[tuple[int, int], BeforeValidator(_hours)]
Date = Annotated[dt.date, BeforeValidator(_date)]
DateTime = Annotated[dt.datetime, BeforeValidator(_datetime)]
Identifier = Annotated[str, BeforeValidator(_name)]
Label = Annotated[str, BeforeValidator(_label)]
NonNegative = Annotated[float, Field(ge=0)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CycleConfig(_Model):
    """When the plan's allowances renew: monthly on a day, back-to-back N-day periods, or once."""

    kind: Literal["monthly", "days", "once"] = "monthly"
    day: int | None = Field(default=None, ge=1, le=31)
    start: Date | None = None
    length: int | None = Field(default=None, ge=1, le=3660)

    @model_validator(mode="after")
    def _shape(self) -> CycleConfig:
        if self.kind == "monthly":
            if self.start is not None or self.length is not None:
                raise _fail("expected only `day` with kind = \"monthly\", found `start`/`length`")
        else:
            if self.day is not None:
                raise _fail("expected `start` and `length` with kind = {kind!r}, found `day`", kind=self.kind)
            if self.start is None or self.length is None:
                raise _fail("expected both `start` (a date) and `length` (days) with kind = {kind!r}, "
                            "found {found}",
                            kind=self.kind, found="only start" if self.start else
                            "only length" if self.length else "neither")
        return self

    @property
    def month_day(self) -> int:
        return self.day or 1


class _Scoped(_Model):
    name: Label
    quota: Quota
    services: list[Label] | None = None
    apps: list[Label] | None = None
    hours: Hours | None = None
    priority: int | None = None
    carrier_names: list[Label] | None = None  # the carrier's names for it in its texts ("限量流量")

    @field_validator("services", "apps", "carrier_names")
    @classmethod
    def _nonempty(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not value:
            raise _fail("expected at least one name (leave the key out for no scope), found []")
        return value

    @property
    def scoped(self) -> bool:
        """Scoped allowances are consumed before unscoped ones."""
        return bool(self.services or self.apps or self.hours)

    def scope_dict(self) -> dict[str, Any]:
        hours = None
        if self.hours:
            start, end = self.hours
            hours = f"{start // 60:02d}:{start % 60:02d}-{end // 60:02d}:{end % 60:02d}"
        return {"services": self.services, "apps": self.apps, "hours": hours}


class BucketConfig(_Scoped):
    """A recurring allowance, renewed every cycle."""

    rollover: bool = False

    @model_validator(mode="after")
    def _rollover_needs_quota(self) -> BucketConfig:
        if self.rollover and self.quota is None:
            raise _fail("expected a finite quota with rollover = true, found \"unlimited\"")
        return self


class PackConfig(_Scoped):
    """A one-off add-on with its own validity: [start, start + days) or [start, end)."""

    start: DateTime
    days: int | None = Field(default=None, ge=1, le=3660)
    end: DateTime | None = None

    @model_validator(mode="after")
    def _validity(self) -> PackConfig:
        if (self.days is None) == (self.end is None):
            raise _fail("expected exactly one of `days` or `end`, found {found}",
                        found="both" if self.days is not None else "neither")
        if self.end is not None:
            if (self.end.tzinfo is None) != (self.start.tzinfo is None):
                raise _fail("expected `start` and `end` both with or both without a UTC offset")
            if self.end <= self.start:
                raise _fail("expected `end` after `start`, found end {end} <= start {start}",
                            end=self.end.isoformat(), start=self.start.isoformat())
        return self


class ThrottleConfig(_Model):
    """The carrier slows the card to `rate` once the cycle's usage (all traffic) reaches `after`."""

    after: PositiveSize
    rate: Rate


class OverageConfig(_Model):
    """What usage beyond every matching allowance costs."""

    price: NonNegative
    per: PositiveSize = Field(default=1024**2)
    block: PositiveSize | None = None
    block_cap: NonNegative | None = None
    daily_cap: NonNegative | None = None
    currency: str

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        if not _CURRENCY_RE.match(value):
            raise _fail("expected an ISO 4217 currency code like 'CNY', found {found}", found=repr(value))
        return value

    @model_validator(mode="after")
    def _cap_needs_block(self) -> OverageConfig:
        if self.block_cap is not None and self.block is None:
            raise _fail("expected `block` (a size) together with `block_cap`, found only `block_cap`")
        return self


def _interfaces(value: list[str]) -> list[str]:
    for name in value:
        if not name or len(name) > 64 or any(c.isspace() or c == "/" for c in name):
            raise _fail("expected interface names or globs like 'wwan0' or 'wwan*', found {found}",
                        found=repr(name))
    return value


def _overhead(value: Any) -> Literal["auto"] | int:
    if value == "auto" or (isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 128):
        return "auto" if value == "auto" else int(value)
    raise _fail("expected \"auto\" or a number of bytes per packet from 0 to 128, found {found}",
                found=repr(value))


def _iccids(value: Any) -> list[str] | None:
    if value is None:
        return None
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise _fail("expected an ICCID string or a list of them, found {found}", found=repr(value))
    for item in items:
        if not isinstance(item, str) or not _ICCID_RE.match(item):
            raise _fail("expected an ICCID of 18 to 22 digits, found {found}", found=repr(item))
    return list(items)


class CardModemConfig(_Model):
    """``[cards.modem]``: how datacap brings the card's data back after a SIM switch (issue #16)."""

    apn: str | None = Field(default=None, min_length=1, max_length=100)


class CardConfig(_Model):
    """One SIM/eSIM card and its plan."""

    name: Identifier
    label: Label | None = None
    interfaces: Annotated[list[str], AfterValidator(_interfaces)] = []
    iccid: Annotated[list[str] | None, BeforeValidator(_iccids)] = None
    count: Literal["both", "rx", "tx"] = "both"
    l2_overhead: Annotated[Literal["auto"] | int, PlainValidator(_overhead)] = "auto"
    cycle: CycleConfig = CycleConfig()
    buckets: list[BucketConfig] = []
    packs: list[PackConfig] = []
    throttle: ThrottleConfig | None = None
    overage: OverageConfig | None = None
    carrier: CarrierConfig | None = None  # issue #7: scheduled balance queries to the carrier
    modem: CardModemConfig | None = None  # issue #16: the APN to connect with after a switch

    @model_validator(mode="after")
    def _unique_names(self) -> CardConfig:
        seen: dict[str, str] = {}
        for kind, items in (("buckets", self.buckets), ("packs", self.packs)):
            for index, item in enumerate(items):
                where = f"{kind}[{index}]"
                if item.name in seen:
                    raise _fail_at((kind, index, "name"), item.name,
                                   "expected unique bucket and pack names within a card, found {name!r} "
                                   "at {first} and {second}", name=item.name, first=seen[item.name],
                                   second=where)
                seen[item.name] = where
        return self

    @model_validator(mode="after")
    def _packs_within_validity(self) -> CardConfig:
        # Compared by date with a day to spare: the config's timezone is not known here.
        first, end = self.validity()
        for index, pack in enumerate(self.packs):
            start = pack.start.date()
            last = pack.end.date() if pack.end is not None else start + dt.timedelta(days=pack.days or 0)
            if (first is not None and last < first) or (end is not None and start > end):
                raise _fail_at(("packs", index, "start"), pack.start,
                               "expected packs[{i}] ({name!r}) to overlap the card's validity "
                               "{first} to {end}, found {start} to {last}", i=index, name=pack.name,
                               first=first, end=end or "open", start=start, last=last)
        return self

    def matches(self, interface: str) -> bool:
        """Whether usage on ``interface`` counts for this card (its `interfaces` globs)."""
        return any(fnmatch.fnmatchcase(interface, pattern) for pattern in self.interfaces)

    def validity(self) -> tuple[dt.date | None, dt.date | None]:
        """First and last-exclusive local dates this card is in use (None = unbounded)."""
        if self.cycle.kind == "monthly":
            return None, None
        assert self.cycle.start is not None and self.cycle.length is not None
        if self.cycle.kind == "days":
            return self.cycle.start, None
        return self.cycle.start, self.cycle.start + dt.timedelta(days=self.cycle.length)


def _globs_overlap(a: str, b: str) -> bool:
    return a == b or fnmatch.fnmatchcase(a, b) or fnmatch.fnmatchcase(b, a)


def _periods_overlap(a: CardConfig, b: CardConfig) -> bool:
    a0, a1 = a.validity()
    b0, b1 = b.validity()
    return (a1 is None or b0 is None or b0 < a1) and (b1 is None or a0 is None or a0 < b1)


def check_cards(cards: list[CardConfig]) -> list[CardConfig]:
    """Cross-card rules: unique names and ICCIDs; two cards may share an interface only when they are
    told apart by ICCID or are in use at different times (eSIM packs bought one after another)."""
    names: dict[str, int] = {}
    iccids: dict[str, int] = {}
    for index, card in enumerate(cards):
        if card.name in names:
            raise _fail_at((index, "name"), card.name,
                           "expected unique card names, found {name!r} at cards[{a}] and cards[{b}]",
                           name=card.name, a=names[card.name], b=index)
        names[card.name] = index
        for iccid in card.iccid or []:
            if iccid in iccids:
                raise _fail_at((index, "iccid"), iccid,
                               "expected each ICCID on one card only, found {iccid} at cards[{a}] and "
                               "cards[{b}]", iccid=iccid, a=iccids[iccid], b=index)
            iccids[iccid] = index
    for i, a in enumerate(cards):
        for j in range(i + 1, len(cards)):
            b = cards[j]
            if a.iccid and b.iccid:
                continue
            shared = [x for x in a.interfaces for y in b.interfaces if _globs_overlap(x, y)]
            if shared and _periods_overlap(a, b):
                raise _fail_at((j, "interfaces"), b.interfaces,
                               "expected cards that share an interface to be in use at different times or "
                               "to have an `iccid`, found cards[{i}] ({a}) and cards[{j}] ({b}) both on "
                               "{iface!r} with overlapping dates", i=i, j=j, a=a.name, b=b.name,
                               iface=shared[0])
    return cards


Cards = Annotated[list[CardConfig], AfterValidator(check_cards)]
"""Use as ``cards: Cards = []`` in the top-level config model to get the cross-card checks."""
