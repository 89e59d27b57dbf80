"""The `[channels]`, `[[alerts]]` and `[alerting]` config sections, validated into typed objects.

The `when` and `action` strings are parsed here, once, into small frozen dataclasses so that the
evaluator never sees text. Anything that does not parse is a ConfigError naming the key path (and the
line, when the integrator passes the file text) together with what was expected and what was found.
"""

from __future__ import annotations

import datetime as dt
import locale
import os
import re
from dataclasses import dataclass
from functools import cached_property
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from datacap.errors import ConfigError, InputError
from datacap.units import parse_duration, parse_rate, parse_size

Language = Literal["zh-CN", "en"]

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


Condition = (RemainingBelow | UsedAbove | Exhausted | Throttled | ForecastExhausts | DaySpike | NewEntity
             | CycleReset | CalibrationOlder)

_WHEN_HELP = ("expected one of: 'remaining < 20%', 'remaining < 1 GB', 'used > 80%', 'used > 10 GB', "
              "'exhausted', 'throttled', 'forecast exhausts before cycle end', 'day > 3 x average', "
              "'new app > 500 MB' (or new client/new service), 'cycle reset', "
              "'calibration older than 7d'")
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


@dataclass(frozen=True, slots=True)
class SwitchSlotAction:
    slot: int


@dataclass(frozen=True, slots=True)
class SwitchProfileAction:
    iccid: str


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


# ---------------------------------------------------------------- pydantic models


def _wrap(fn: Any, value: Any) -> Any:
    """Turn our InputError into a ValueError so pydantic reports it with the key path."""
    try:
        return fn(value)
    except InputError as err:
        raise ValueError(str(err)) from None


class Allowlist(BaseModel):
    """What still passes while a card is blocked."""

    model_config = ConfigDict(extra="forbid")
    dns: bool = True
    endpoints: list[str] = Field(default_factory=list, description="host:port, TCP and UDP")
    apps: list[str] = Field(default_factory=list, description="cgroup v2 paths, e.g. system.slice/x.service")
    marks: list[int] = Field(default_factory=list, description="fwmarks set by the attribution layer")

    @field_validator("endpoints")
    @classmethod
    def _endpoints(cls, value: list[str]) -> list[str]:
        for item in value:
            host, sep, port = item.rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"expected 'host:port' like 'vpn.example.org:51820', found {item!r}")
        return value


class AlertingOptions(BaseModel):
    """`[alerting]`: global options."""

    model_config = ConfigDict(extra="forbid")
    language: Language | None = None
    quiet_hours: str | None = None
    retry_attempts: Annotated[int, Field(ge=1, le=100)] = 8
    retry_initial: str = "30s"
    retry_max: str = "1h"
    spike_floor: str = "10 MB"
    allowlist: Allowlist = Field(default_factory=Allowlist)

    @field_validator("quiet_hours")
    @classmethod
    def _quiet(cls, v: str | None) -> str | None:
        if v is not None:
            _wrap(parse_quiet_hours, v)
        return v

    @field_validator("retry_initial", "retry_max")
    @classmethod
    def _dur(cls, v: str) -> str:
        _wrap(parse_duration, v)
        return v

    @field_validator("spike_floor")
    @classmethod
    def _size(cls, v: str) -> str:
        _wrap(parse_size, v)
        return v

    def lang(self) -> Language:
        return self.language or language_from_locale()

    def backoff(self) -> tuple[int, int]:
        return parse_duration(self.retry_initial), parse_duration(self.retry_max)

    def quiet(self) -> QuietHours | None:
        return parse_quiet_hours(self.quiet_hours) if self.quiet_hours else None


class AlertRule(BaseModel):
    """One `[[alerts]]` table."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)
    id: str | None = Field(default=None, description="stable name; default derived from card/bucket/when")
    card: str | None = None
    bucket: str | None = Field(default=None, description="a bucket name, '*' for each bucket, or none")
    when: str
    notify: list[str] = Field(default_factory=list)
    action: str | None = None
    quiet_hours: str | None = None

    @field_validator("when")
    @classmethod
    def _when(cls, v: str) -> str:
        _wrap(parse_when, v)
        return v

    @field_validator("action")
    @classmethod
    def _action(cls, v: str | None) -> str | None:
        if v is not None:
            _wrap(parse_action, v)
        return v

    @field_validator("quiet_hours")
    @classmethod
    def _quiet(cls, v: str | None) -> str | None:
        if v is not None:
            _wrap(parse_quiet_hours, v)
        return v

    @cached_property
    def condition(self) -> Condition:
        return parse_when(self.when)

    @cached_property
    def parsed_action(self) -> Action | None:
        return parse_action(self.action) if self.action else None

    @cached_property
    def key(self) -> str:
        """What state is stored under: changing card, bucket or when makes it a new rule."""
        return self.id or f"{self.card or '*'}|{self.bucket or ''}|{canonical_when(self.condition)}"


def _channel_url(value: str) -> str:
    if value == "desktop" or re.match(r"^[a-z][a-z0-9+.-]*://\S*$", value, re.I):
        return value
    # Never echo the value: it is a secret.
    raise ValueError("expected an apprise URL like 'tgram://TOKEN/CHAT' or 'desktop', found a value "
                     "without 'scheme://'")


class AlertsConfig(BaseModel):
    """The three sections together; built with :func:`load_alerts_config`."""

    model_config = ConfigDict(extra="forbid")
    channels: dict[str, str] = Field(default_factory=dict)
    alerts: list[AlertRule] = Field(default_factory=list)
    alerting: AlertingOptions = Field(default_factory=AlertingOptions)

    @field_validator("channels")
    @classmethod
    def _channels(cls, value: dict[str, str]) -> dict[str, str]:
        for name, url in value.items():
            if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
                raise ValueError(f"channel names are letters, digits, '_', '-', '.', found {name!r}")
            _channel_url(url)
        return value

    @model_validator(mode="after")
    def _cross(self) -> AlertsConfig:
        seen: set[str] = set()
        for i, rule in enumerate(self.alerts):
            for ch in rule.notify:
                if ch not in self.channels:
                    known = ", ".join(sorted(self.channels)) or "none defined"
                    raise ValueError(f"alerts[{i}].notify: channel {ch!r} is not in [channels] ({known})")
            if rule.key in seen:
                raise ValueError(f"alerts[{i}]: a second rule with the same card, bucket and when "
                                 f"({rule.key!r}); give one an 'id'")
            seen.add(rule.key)
        return self


def language_from_locale() -> Language:
    """zh-CN when the environment's locale is Chinese, else English."""
    for var in ("LC_ALL", "LC_MESSAGES", "LANG", "LANGUAGE"):
        value = os.environ.get(var, "")
        if value:
            return "zh-CN" if value.lower().startswith("zh") else "en"
    code = locale.getlocale()[0] or ""
    return "zh-CN" if code.lower().startswith("zh") else "en"


def load_alerts_config(data: dict[str, Any], *, file: str = "config",
                       text: str | None = None) -> AlertsConfig:
    """Validate the parsed TOML document (only its channels/alerts/alerting keys are read).

    ``text`` is the file's source, used to name the line of a bad key.
    """
    part = {k: data[k] for k in ("channels", "alerts", "alerting") if k in data}
    try:
        return AlertsConfig.model_validate(part)
    except ValidationError as err:
        first = err.errors()[0]
        loc: tuple[Any, ...] = tuple(first["loc"])
        msg = str(first["msg"]).removeprefix("Value error, ")
        # Cross-field checks cannot set a location; they start their message with the key path instead.
        if not loc and (m := re.match(r"^(\w+)\[(\d+)\](?:\.(\w+))?: ", msg)):
            loc = (m.group(1), int(m.group(2)), *([m.group(3)] if m.group(3) else []))
            msg = msg[m.end():]
        line = _find_line(text, loc) if text and loc else None
        where = f"{file}:{line}" if line else file
        raise ConfigError(f"{where}: {_key_path(loc)}: {msg}") from None


def _key_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _find_line(text: str, loc: tuple[Any, ...]) -> int | None:
    """Best-effort line of a key: the n-th `[[alerts]]` table, then the key inside it."""
    lines = text.splitlines()
    section, index = loc[0], (loc[1] if len(loc) > 1 and isinstance(loc[1], int) else None)
    key = next((p for p in loc[1:] if isinstance(p, str)), None)
    header = re.compile(rf"^\s*\[\[?\s*{re.escape(str(section))}\s*\]\]?\s*$")
    count, start = -1, None
    for no, line in enumerate(lines):
        if header.match(line):
            count += 1
            if index is None or count == index:
                start = no
                break
    if start is None:
        return None
    for no in range(start + 1, len(lines)):
        if lines[no].lstrip().startswith("["):
            break
        if key and re.match(rf"^\s*\"?{re.escape(key)}\"?\s*=", lines[no]):
            return no + 1
    return start + 1
