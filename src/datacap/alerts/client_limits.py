"""Per-client quotas on a router or hotspot (``[[clients.limits]]``, issue #15 item 3): the pure part.

A limit names a LAN client by MAC or DHCP hostname, gives a daily and/or cycle quota, and an action:
``block`` (no forwarding for it) or ``throttle RATE`` (policed to RATE each way). A client that
reaches a quota is capped until that period ends (local midnight, or the card's cycle reset).

Everything here is pure: which periods hold ``now``, whether a client is over a quota given a usage
function, and the whole ``inet datacap_clients`` nftables table for the caps in force. Only that
table is ever created or deleted: other tables, and datacap's card enforcement table, are untouched.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from datacap.alerts.grammar import BlockAction, ThrottleAction, parse_action
from datacap.errors import ConfigError, InputError
from datacap.plans.config import CardConfig
from datacap.plans.cycles import cycle_at
from datacap.units import parse_size

TABLE = "datacap_clients"
_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
_HOST = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$")


class ClientLimit(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    mac: str | None = None
    hostname: str | None = None
    daily: str | None = Field(None, description="quota per local day, e.g. '500 MB'")
    cycle: str | None = Field(None, description="quota per cycle of `card`, e.g. '5 GB'")
    card: str | None = Field(None, description="whose cycle (default: the only card)")
    action: str = Field("block", description="'block' or 'throttle RATE'")
    notify: list[str] = Field(default_factory=list, description="channels told when the client is capped")
    name: str | None = None  # shown in alerts and `datacap clients`

    @field_validator("mac")
    @classmethod
    def _mac(cls, v: str | None) -> str | None:
        if v is not None and not _MAC.match(v.lower().replace("-", ":")):
            raise ValueError(f"expected a MAC address like 'aa:bb:cc:dd:ee:ff', found {v!r}")
        return None if v is None else v.lower().replace("-", ":")

    @field_validator("hostname")
    @classmethod
    def _host(cls, v: str | None) -> str | None:
        if v is not None and not _HOST.match(v):
            raise ValueError(f"expected a DHCP hostname, found {v!r}")
        return v

    @field_validator("daily", "cycle")
    @classmethod
    def _size(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                if parse_size(v) <= 0:
                    raise ValueError(f"expected a quota above zero, found {v!r}")
            except InputError as exc:
                raise ValueError(str(exc)) from None
        return v

    @field_validator("action")
    @classmethod
    def _action(cls, v: str) -> str:
        try:
            action = parse_action(v)
        except InputError as exc:
            raise ValueError(str(exc)) from None
        if not isinstance(action, BlockAction | ThrottleAction):
            raise ValueError(f"expected 'block' or 'throttle RATE', found {v!r}")
        return v

    @model_validator(mode="after")
    def _whole(self) -> ClientLimit:
        if (self.mac is None) == (self.hostname is None):
            raise ValueError("expected exactly one of 'mac' or 'hostname'")
        if self.daily is None and self.cycle is None:
            raise ValueError("expected a 'daily' or a 'cycle' quota (or both)")
        return self

    @property
    def key(self) -> str:
        return f"mac:{self.mac}" if self.mac else f"hostname:{self.hostname}"

    @property
    def label(self) -> str:
        return self.name or self.mac or self.hostname or "?"

    @property
    def parsed_action(self) -> BlockAction | ThrottleAction:
        action = parse_action(self.action)
        assert isinstance(action, BlockAction | ThrottleAction)
        return action


def client_limits(table: Mapping[str, Any] | None, cards: Sequence[CardConfig], channels: Mapping[str, str],
                  source: str = "config") -> list[ClientLimit]:
    """Validate ``[[clients.limits]]``; errors name ``clients.limits[i].key``."""
    raw = (table or {}).get("limits", [])
    if not isinstance(raw, list):
        raise ConfigError(f"{source}: clients.limits: expected an array of tables ([[clients.limits]])")
    out: list[ClientLimit] = []
    for i, item in enumerate(raw):
        where = f"{source}: clients.limits[{i}]"
        try:
            limit = ClientLimit.model_validate(item)
        except ValidationError as exc:
            err = exc.errors()[0]
            key = ".".join(str(p) for p in err["loc"])
            msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"].removeprefix("Value error, ")
            raise ConfigError(f"{where}{'.' + key if key else ''}: {msg}") from None
        if limit.cycle is not None:
            names = [c.name for c in cards]
            if limit.card is None and len(names) != 1:
                raise ConfigError(f"{where}.card: a cycle quota needs the card whose cycle it follows "
                                  f"(known: {', '.join(names) or 'none: add a [[cards]] table'})")
            if limit.card is not None and limit.card not in names:
                raise ConfigError(f"{where}.card: expected one of {', '.join(names) or 'no cards'}, "
                                  f"found {limit.card!r}")
        unknown = [c for c in limit.notify if c not in channels]
        if unknown:
            raise ConfigError(f"{where}.notify: expected names from [channels], found {unknown[0]!r}")
        if limit.key in {o.key for o in out}:
            raise ConfigError(f"{where}: a second limit for {limit.key}")
        out.append(limit)
    return out


@dataclass(frozen=True, slots=True)
class Period:
    kind: str  # "day" | "cycle"
    start: int  # epoch seconds
    end: int
    quota: int


@dataclass(frozen=True, slots=True)
class Cap:
    key: str
    label: str
    period: Period
    used: int
    action: str  # "block" | "throttle"
    rate_bps: int | None


def periods(limit: ClientLimit, now: dt.datetime, tz: ZoneInfo, cards: Sequence[CardConfig]) -> list[Period]:
    """The periods of ``limit`` that hold ``now``: its local day and its card's cycle."""
    out = []
    if limit.daily is not None:
        local = now.astimezone(tz)
        start = dt.datetime.combine(local.date(), dt.time(), tz)
        end = dt.datetime.combine(local.date() + dt.timedelta(days=1), dt.time(), tz)
        out.append(Period("day", int(start.timestamp()), int(end.timestamp()), parse_size(limit.daily)))
    if limit.cycle is not None:
        card = next(c for c in cards if limit.card in (None, c.name))
        cycle = cycle_at(card.cycle, now, tz)
        out.append(Period("cycle", cycle.start_epoch, cycle.end_epoch, parse_size(limit.cycle)))
    return out


def evaluate(limit: ClientLimit, used: Callable[[Period], int], now: dt.datetime, tz: ZoneInfo,
             cards: Sequence[CardConfig]) -> Cap | None:
    """The cap ``limit`` calls for at ``now`` (the period ending last when both quotas are reached)."""
    action = limit.parsed_action
    over = [(p, u) for p in periods(limit, now, tz, cards) if p.start <= now.timestamp() < p.end
            and (u := used(p)) >= p.quota]
    if not over:
        return None
    period, bytes_used = max(over, key=lambda pu: pu[0].end)
    return Cap(limit.key, limit.label, period, bytes_used, "throttle" if isinstance(action, ThrottleAction)
               else "block", action.rate_bps if isinstance(action, ThrottleAction) else None)


@dataclass(frozen=True, slots=True)
class Target:
    """A capped client as nftables sees it: its MACs (upload) and addresses (download)."""

    key: str
    action: str
    rate_bps: int | None
    macs: tuple[str, ...]
    ips: tuple[str, ...]


def ruleset(targets: Sequence[Target]) -> str:
    """An ``nft -f`` script replacing the whole ``inet datacap_clients`` table, atomically (pure)."""
    script = f"table inet {TABLE}\ndelete table inet {TABLE}\n"
    rules: list[str] = []
    for t in sorted(targets, key=lambda t: t.key):
        v4 = sorted(a for a in t.ips if ":" not in a)
        v6 = sorted(a for a in t.ips if ":" in a)
        macs = [f"ether saddr {m}" for m in sorted(t.macs)]
        src = ([f"ip saddr {_set(v4)}"] if v4 else []) + ([f"ip6 saddr {_set(v6)}"] if v6 else [])
        dst = ([f"ip daddr {_set(v4)}"] if v4 else []) + ([f"ip6 daddr {_set(v6)}"] if v6 else [])
        if t.action == "block":
            matches, verdict = macs + src + dst, "counter drop"
        else:  # one policer per direction: uploads by MAC when known (else by address), downloads by address
            rate = max(1, (t.rate_bps or 0) // 8)
            burst = max(rate // 10, 15000)  # ~100 ms at the rate, at least ten full packets
            matches = (macs or src) + dst
            verdict = f"limit rate over {rate} bytes/second burst {burst} bytes counter drop"
        rules += [f"{match} {verdict} comment {_comment(t.key)}" for match in matches]
    if not rules:
        return script
    body = "".join(f"    {r}\n" for r in rules)
    return (script + f"table inet {TABLE} {{\n  chain forward {{\n"
            "    type filter hook forward priority filter - 1; policy accept;\n" + body + "  }\n}\n")


def _set(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else "{ " + ", ".join(items) + " }"


def _comment(key: str) -> str:
    return '"' + re.sub(r'[^A-Za-z0-9:._ -]', "_", key)[:120] + '"'
