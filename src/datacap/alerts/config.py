"""The `[channels]`, `[[alerts]]` and `[alerting]` config sections, validated into typed objects.

The `when` and `action` strings are parsed once (by :mod:`datacap.alerts.grammar`, whose names are
re-exported here) into small frozen dataclasses, so that the evaluator never sees text. Anything that
does not parse is a ConfigError naming the key path (and the line, when the integrator passes the
file text) together with what was expected and what was found.
"""

from __future__ import annotations

import locale
import os
import re
from functools import cached_property
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from datacap.alerts.grammar import (
    Action,
    BlockAction,
    CalibrationOlder,
    CarrierDisagrees,
    Condition,
    CycleReset,
    DaySpike,
    Exhausted,
    ForecastExhausts,
    NewEntity,
    QuietHours,
    RemainingBelow,
    SwitchProfileAction,
    SwitchSlotAction,
    Threshold,
    ThrottleAction,
    Throttled,
    UsedAbove,
    canonical_when,
    describe_action,
    parse_action,
    parse_quiet_hours,
    parse_when,
)
from datacap.errors import ConfigError, InputError
from datacap.references import unknown_name
from datacap.units import parse_duration, parse_size

__all__ = [
    "Action", "AlertRule", "AlertingOptions", "AlertsConfig", "Allowlist", "BlockAction", "CalibrationOlder",
    "CarrierDisagrees",
    "Condition", "CycleReset", "DaySpike", "Exhausted", "ForecastExhausts", "Language", "NewEntity",
    "QuietHours", "RemainingBelow", "SwitchProfileAction", "SwitchSlotAction", "Threshold", "ThrottleAction",
    "Throttled", "UsedAbove", "canonical_when", "describe_action", "language_from_locale",
    "load_alerts_config", "parse_action", "parse_quiet_hours", "parse_when",
]

Language = Literal["zh-CN", "en"]


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
                    raise ValueError(f"alerts[{i}].notify: "
                                     f"{unknown_name('channel', ch, self.channels, ' in [channels]')}")
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
