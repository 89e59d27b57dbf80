"""The TOML config: one pydantic model, every key validated, every error traced to its file and line.

Sections owned by feature modules (cards, alerts, channels, ...) are pydantic models defined next to
the feature and composed here. An invalid file never yields a partial config: :func:`load_config`
raises ConfigError naming the file, the key path, the line, what was expected and what was found.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from datacap.alerts.config import AlertingOptions, AlertRule, AlertsConfig
from datacap.errors import ConfigError, InputError
from datacap.paths import default_config_path
from datacap.plans.config import Cards
from datacap.reports.schedule import ReportsConfig
from datacap.timeutil import WEEKDAYS, load_zone, system_timezone_name
from datacap.units import parse_duration, parse_rate


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MeterConfig(Strict):
    interval: float = Field(2.0, gt=0, le=3600, description="seconds between counter samples")
    flush: float = Field(30.0, gt=0, le=3600, description="seconds between writes to the store")
    include: list[str] = Field(default_factory=list, description="interface globs to meter (default all)")
    exclude: list[str] = Field(default_factory=list, description="interface globs never metered")
    max_rate: str = Field("100 Gbit/s", description="counter jumps faster than this are rejected")

    @field_validator("max_rate")
    @classmethod
    def _rate(cls, value: str) -> str:
        _wrap(parse_rate, value)
        return value

    @property
    def max_rate_bps(self) -> int:
        return parse_rate(self.max_rate)


class RetentionConfig(Strict):
    """How long each resolution is kept; "forever" or a duration like "7d"."""

    fivemin: str = Field("7d", alias="5min")
    hour: str = "366d"
    day: str = "forever"
    week: str = "forever"
    month: str = "forever"
    year: str = "forever"
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("*")
    @classmethod
    def _duration(cls, value: str) -> str:
        if value != "forever":
            _wrap(parse_duration, value)
        return value

    def seconds(self) -> dict[str, int | None]:
        raw = {"5min": self.fivemin, "hour": self.hour, "day": self.day, "week": self.week,
               "month": self.month, "year": self.year}
        return {res: None if v == "forever" else parse_duration(v) for res, v in raw.items()}


class AttributionConfig(Strict):
    """Per-app / per-client / per-service attribution from conntrack (root only)."""

    enabled: bool = Field(True, description="attribute flows when running as root")
    uplinks: list[str] = Field(default_factory=list,
                               description="card interfaces (globs); default: the cards' interfaces, "
                                           "else the interfaces holding a default route")
    mark_mask: int = Field(0xFFFF0000, description="ct mark bits datacap may use (other bits are kept)")
    realtime: bool = Field(True, description="run the conntrack event thread at real-time priority")

    @field_validator("mark_mask")
    @classmethod
    def _mask(cls, value: int) -> int:
        bits = bin(value).count("1")
        contiguous = value > 0 and (value >> (value & -value).bit_length() - 1) + 1 == 1 << bits
        if not 0 < value < 1 << 32 or bits < 8 or not contiguous:
            raise ValueError(f"expected contiguous 32-bit mask of at least 8 bits like 0xffff0000, found {value:#x}")
        return value


class WebConfig(Strict):
    listen: str = "127.0.0.1:8765"
    token: str | None = None
    enabled: bool = True


class Config(Strict):
    timezone: str = Field(default_factory=system_timezone_name)
    week_start: str = "monday"
    meter: MeterConfig = Field(default_factory=lambda: MeterConfig())
    retention: RetentionConfig = Field(default_factory=lambda: RetentionConfig())
    web: WebConfig = Field(default_factory=WebConfig)
    attribution: AttributionConfig = Field(default_factory=lambda: AttributionConfig())
    cards: Cards = Field(default_factory=list)
    # Alerts (datacap.alerts): notification channels, rules and delivery options.
    channels: dict[str, str] = Field(default_factory=dict)
    alerts: list[AlertRule] = Field(default_factory=list)
    alerting: AlertingOptions = Field(default_factory=lambda: AlertingOptions())
    reports: ReportsConfig = Field(default_factory=lambda: ReportsConfig())
    # Attribution (datacap.meter): validated by their own loaders in parse_config, kept as tables.
    services: dict[str, Any] = Field(default_factory=dict)
    names: dict[str, Any] = Field(default_factory=dict)
    clients: dict[str, Any] = Field(default_factory=dict)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            load_zone(value)
        except ConfigError:
            raise ValueError(f"expected an IANA zone name like 'Asia/Shanghai', found {value!r}") from None
        return value

    @field_validator("week_start")
    @classmethod
    def _week(cls, value: str) -> str:
        if value.lower() not in WEEKDAYS:
            raise ValueError(f"expected a weekday name ({', '.join(WEEKDAYS)}), found {value!r}")
        return value.lower()

    @model_validator(mode="after")
    def _alerts_agree(self) -> Config:
        AlertsConfig.model_validate({"channels": self.channels, "alerts": [a.model_dump() for a in self.alerts],
                                     "alerting": self.alerting.model_dump()})
        return self

    @property
    def alerts_config(self) -> AlertsConfig:
        return AlertsConfig.model_construct(channels=dict(self.channels), alerts=list(self.alerts),
                                            alerting=self.alerting)

    @property
    def tz(self) -> ZoneInfo:
        return load_zone(self.timezone)

    @property
    def week_start_index(self) -> int:
        return WEEKDAYS.index(self.week_start)


def _wrap(parse: Any, value: Any) -> Any:
    """Run a units parser inside a validator: its InputError becomes a pydantic error message."""
    try:
        return parse(value)
    except InputError as exc:
        raise ValueError(str(exc)) from None


def load_config(path: Path | None = None, *, required: bool = False) -> Config:
    """Read and validate the config. A missing default file means defaults; a named one must exist."""
    explicit = path is not None or "DATACAP_CONFIG" in os.environ
    path = path or default_config_path()
    if not path.exists():
        if explicit or required:
            raise ConfigError(f"{path}: no such config file")
        return Config()
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: expected UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    return parse_config(data, path, text)


def parse_config(data: dict[str, Any], path: Path | str = "<config>", text: str = "") -> Config:
    try:
        cfg = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError("\n".join(_describe(err, path, text) for err in exc.errors())) from None
    # Sections whose loaders validate (and raise ConfigError naming the source) on their own; only
    # when present: building the shipped services catalog costs ~80 ms nobody needs to check it.
    if cfg.services:
        from datacap.meter.catalog import load_catalog

        load_catalog(cfg.services, source=str(path))
    if cfg.names:
        from datacap.meter.names import names_config

        names_config(cfg.names, str(path))
    if cfg.clients:
        from datacap.meter.clients import clients_config

        clients_config(cfg.clients, str(path))
    return cfg


def _describe(err: Any, path: Path | str, text: str) -> str:
    loc = tuple(err["loc"])
    # Cross-field checks cannot set a location: they start their message with the key path instead.
    if not loc and (m := _LEADING_KEY.match(err["msg"].removeprefix("Value error, "))):
        loc = (m.group(1), int(m.group(2)), *([m.group(3)] if m.group(3) else []))
        err = {**err, "msg": err["msg"].removeprefix("Value error, ")[m.end():]}
    key = _key_path(loc)
    line = find_line(text, loc)
    where = f"{path}:{line}" if line else str(path)
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = "unknown key"
    elif err["type"] == "missing":
        msg = "required key is missing"
    elif "found" not in msg and "input" in err and not isinstance(err["input"], dict | list):
        msg = f"{msg}, found {err['input']!r}"
    return f"{where}: {key}: {msg}"


def _key_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


_LEADING_KEY = re.compile(r"^(\w+)\[(\d+)\](?:\.(\w+))?: ")
_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\-\"']+)\s*=")


def find_line(text: str, loc: tuple[Any, ...]) -> int | None:
    """The line where the key at ``loc`` (pydantic's location) is written, best effort; None if unknown."""
    if not text:
        return None
    counters: dict[tuple[str, ...], int] = {}
    table: tuple[Any, ...] = ()
    best: int | None = None
    target = tuple(loc)
    for number, line in enumerate(text.splitlines(), 1):
        header = _HEADER.match(line)
        if header:
            names = tuple(p.strip().strip('"') for p in header.group(2).split("."))
            table = _index_path(names, counters, array=header.group(1) == "[[")
            if target[: len(table)] == table:
                best = number
            continue
        key = _KEY.match(line)
        if key:
            full = (*table, key.group(1).strip("\"'"))
            if target[: len(full)] == full:
                return number
    return best


def _index_path(names: tuple[str, ...], counters: dict[tuple[str, ...], int], array: bool) -> tuple[Any, ...]:
    """Turn a table header into a pydantic location, numbering arrays of tables as pydantic does."""
    path: list[Any] = []
    for i, name in enumerate(names):
        path.append(name)
        prefix = names[: i + 1]
        is_last = i == len(names) - 1
        if is_last and array:
            counters[prefix] = counters.get(prefix, -1) + 1
            # A new element of this array resets the numbering of arrays nested under it.
            for other in [k for k in counters if len(k) > len(prefix) and k[: len(prefix)] == prefix]:
                del counters[other]
            path.append(counters[prefix])
        elif prefix in counters:
            path.append(counters[prefix])
    return tuple(path)
