"""Builders shared by the plan tests: cards from TOML text, records from local times."""

from __future__ import annotations

import datetime as dt
import tomllib
from typing import Any
from zoneinfo import ZoneInfo

from datacap.model import UsageRecord
from datacap.plans.config import CardConfig
from datacap.plans.engine import Calibration, card_status, compute_status
from datacap.plans.status_model import CardStatus

SH = ZoneInfo("Asia/Shanghai")
GB = 1024**3
MB = 1024**2


def card(body: str = "", name: str = "c") -> CardConfig:
    """A card from the TOML body of one [[cards]] entry (keys relative to the card)."""
    return CardConfig.model_validate({"name": name, **tomllib.loads(body)})


def t(text: str, tz: ZoneInfo = SH) -> dt.datetime:
    """'2026-11-25 12:00' in ``tz``."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=tz)


def rec(start: str, nbytes: int, seconds: int = 3600, *, app: str | None = None, service: str | None = None,
        tx: int = 0, iface: str = "wwan0", tz: ZoneInfo = SH, rx_packets: int = 0,
        tx_packets: int = 0) -> UsageRecord:
    """``nbytes`` received (and ``tx`` sent) in [start, start + seconds)."""
    return UsageRecord(int(t(start, tz).timestamp()), seconds, iface, nbytes, tx, rx_packets, tx_packets,
                       app=app, service=service)


def status(c: CardConfig, records: list[UsageRecord], at: str, cals: list[Calibration] | None = None,
           tz: ZoneInfo = SH, **kw: Any) -> dict[str, Any]:
    return compute_status(c, records, cals or [], t(at, tz), tz, **kw)


def model(c: CardConfig, records: list[UsageRecord], at: str, cals: list[Calibration] | None = None,
          tz: ZoneInfo = SH, **kw: Any) -> CardStatus:
    """The typed status (what ``status`` returns as JSON)."""
    return card_status(c, records, cals or [], t(at, tz), tz, **kw)


def bucket(st: dict[str, Any], name: str, kind: str | None = None) -> dict[str, Any]:
    for b in st["buckets"]:
        if b["name"] == name and (kind is None or b["kind"] == kind):
            return b
    raise AssertionError(f"no bucket {name!r} ({kind}) in {[b['name'] for b in st['buckets']]}")


def used(st: dict[str, Any]) -> dict[str, int]:
    """{name or name@kind: used_bytes} of every bucket, plus 'overage'."""
    out = {(b["name"] if b["kind"] != "rollover" else b["name"] + "@rollover"): b["used_bytes"]
           for b in st["buckets"]}
    out["overage"] = st["overage_bytes"]
    return out
