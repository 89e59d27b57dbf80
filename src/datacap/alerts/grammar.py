"""The small languages inside the alert config: `when` conditions, `action`s and quiet hours.

Each parser turns text into a frozen dataclass, or raises InputError saying what was expected; the
config models wrap that into a ConfigError naming the file, line and key.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from datacap.errors import InputError
from datacap.modem.types import SwitchProfile, SwitchSlot
from datacap.units import parse_duration, parse_rate, parse_size

# ---------------------------------------------------------------- conditions (the `when` grammar)


@dataclass(frozen=True, slots=True)
class Threshold:
    """Either a percentage of the quota or an absolute byte count."""

    percent: float | None = None
    bytes: int | None = None

    def text(self) -> str:
        return f"{self.percent:g}%" if self.percent is not None else f"{self.bytes} B"


@dataclass(frozen=True, slots=True)
class RemainingBelow:
    threshold: Threshold


@dataclass(frozen=True, slots=True)
class UsedAbove:
    threshold: Threshold


@dataclass(frozen=True, slots=True)
class Exhausted:
    pass


@dataclass(frozen=True, slots=True)
class Throttled:
    pass


@dataclass(frozen=True, slots=True)
class ForecastExhausts:
    pass


@dataclass(frozen=True, slots=True)
class DaySpike:
    factor: float


@dataclass(frozen=True, slots=True)
class NewEntity:
    """`new app > SIZE`: kinds is which of app/client/service count (`new app` means all three)."""

    min_bytes: int
    kinds: tuple[str, ...] = ("app", "client", "service")


@dataclass(frozen=True, slots=True)
class CycleReset:
    pass


@dataclass(frozen=True, slots=True)
class CalibrationOlder:
    seconds: int


@dataclass(frozen=True, slots=True)
class CarrierDisagrees:
    """A carrier text's total for a part is not the config's quota (status' ``carrier_mismatch``)."""


Condition = (RemainingBelow | UsedAbove | Exhausted | Throttled | ForecastExhausts | DaySpike | NewEntity
             | CycleReset | CalibrationOlder | CarrierDisagrees)

_WHEN_HELP = ("expected one of: 'remaining < 20%', 'remaining < 1 GB', 'used > 80%', 'used > 10 GB', "
              "'exhausted', 'throttled', 'forecast exhausts before cycle end', 'day > 3 x average', "
              "'new app > 500 MB' (or new client/new service), 'cycle reset', "
              "'calibration older than 7d', 'carrier disagrees'")
_CMP_RE = re.compile(r"^(remaining|used)\s*([<>])\s*(.+)$")
_SPIKE_RE = re.compile(r"^day\s*>\s*(\d+(?:\.\d+)?)\s*(?:x|×|\*)\s*(?:the\s+)?(?:trailing\s+)?average$")
_NEW_RE = re.compile(r"^new\s+(app|client|service)s?\s*>\s*(.+)$")
_CALIB_RE = re.compile(r"^calibration\s+older\s+than\s+(.+)$")


def _threshold(text: str) -> Threshold:
    text = text.strip()
    if text.endswith("%"):
        try:
            pct = float(text[:-1])
        except ValueError:
            raise InputError(f"expected a percentage like '20%', found {text!r}") from None
        if not 0 < pct <= 100:
            raise InputError(f"expected a percentage between 0 and 100, found {text!r}")
        return Threshold(percent=pct)
    return Threshold(bytes=parse_size(text))


def parse_when(text: str) -> Condition:
    """Parse a `when` string into a typed condition; raises InputError with the grammar on failure."""
    norm = " ".join(str(text).strip().lower().split())
    fixed: dict[str, Condition] = {
        "exhausted": Exhausted(), "throttled": Throttled(), "cycle reset": CycleReset(),
        "forecast exhausts before cycle end": ForecastExhausts(),
        "forecast exhausts": ForecastExhausts(),
        "carrier disagrees": CarrierDisagrees(),
    }
    if norm in fixed:
        return fixed[norm]
    try:
        if m := _CMP_RE.match(norm):
            word, op, rest = m.groups()
            if (word, op) == ("remaining", "<"):
                return RemainingBelow(_threshold(rest))
            if (word, op) == ("used", ">"):
                return UsedAbove(_threshold(rest))
            raise InputError(f"'{word}' only compares with '{'<' if word == 'remaining' else '>'}'")
        if m := _SPIKE_RE.match(norm):
            factor = float(m.group(1))
            if factor <= 1:
                raise InputError(f"a spike factor must be above 1, found {m.group(1)}")
            return DaySpike(factor)
        if m := _NEW_RE.match(norm):
            kind, size = m.groups()
            kinds = ("app", "client", "service") if kind == "app" else (kind,)
            return NewEntity(parse_size(size), kinds)
        if m := _CALIB_RE.match(norm):
            return CalibrationOlder(parse_duration(m.group(1)))
    except InputError as err:
        raise InputError(f"{err}; {_WHEN_HELP}") from None
    raise InputError(f"found {text!r}; {_WHEN_HELP}")


def canonical_when(cond: Condition) -> str:
    """A stable text for a condition: part of the rule key that state is stored under."""
    match cond:
        case RemainingBelow(t):
            return f"remaining<{t.text()}"
        case UsedAbove(t):
            return f"used>{t.text()}"
        case DaySpike(f):
            return f"day>{f:g}xavg"
        case NewEntity(size, kinds):
            return f"new:{'+'.join(kinds)}>{size}"
        case CalibrationOlder(s):
            return f"calibration>{s}s"
        case _:
            return type(cond).__name__.lower()


# ---------------------------------------------------------------- actions


@dataclass(frozen=True, slots=True)
class ThrottleAction:
    rate_bps: int


@dataclass(frozen=True, slots=True)
class BlockAction:
    pass


# The modem layer carries these out; one definition serves the rule grammar and the switcher.
SwitchSlotAction = SwitchSlot
SwitchProfileAction = SwitchProfile


Action = ThrottleAction | BlockAction | SwitchSlotAction | SwitchProfileAction
_ACTION_HELP = "expected 'throttle 1 Mbit/s', 'block', 'switch-slot 2' or 'switch-profile ICCID'"


def describe_action(action: Action) -> str:
    """The action as it is written in the config ("throttle 1 Mbit/s")."""
    match action:
        case ThrottleAction(rate):
            value, unit = next((rate / scale, u) for scale, u in ((10**9, "Gbit/s"), (10**6, "Mbit/s"),
                                                                  (10**3, "kbit/s"), (1, "bit/s"))
                               if rate >= scale or scale == 1)
            return f"throttle {value:g} {unit}"
        case BlockAction():
            return "block"
        case SwitchSlotAction(slot):
            return f"switch-slot {slot}"
        case SwitchProfileAction(iccid):
            return f"switch-profile {iccid}"
    raise AssertionError(action)


def parse_action(text: str) -> Action:
    norm = " ".join(str(text).strip().split())
    word, _, arg = norm.partition(" ")
    word = word.lower()
    if word == "block" and not arg:
        return BlockAction()
    if word == "throttle" and arg:
        return ThrottleAction(parse_rate(arg))
    if word == "switch-slot" and arg.isdigit() and int(arg) >= 1:
        return SwitchSlotAction(int(arg))
    if word == "switch-profile" and re.fullmatch(r"\d{18,22}F?", arg):
        return SwitchProfileAction(arg)
    raise InputError(f"{_ACTION_HELP}, found {text!r}")


# ---------------------------------------------------------------- quiet hours


@dataclass(frozen=True, slots=True)
class QuietHours:
    """A daily local-time window; start > end wraps past midnight ("23:00-07:00")."""

    start: dt.time
    end: dt.time

    def contains(self, t: dt.time) -> bool:
        if self.start <= self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end


def parse_quiet_hours(text: str) -> QuietHours:
    m = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*", str(text))
    if m:
        h1, m1, h2, m2 = (int(g) for g in m.groups())
        if h1 < 24 and h2 < 24 and m1 < 60 and m2 < 60 and (h1, m1) != (h2, m2):
            return QuietHours(dt.time(h1, m1), dt.time(h2, m2))
    raise InputError(f"expected quiet hours like '23:00-07:00', found {text!r}")
