"""A MiFi stick's or CPE's own web API as a metering source (``[[sources]]``, issue #15 item 5).

Sticks that run their vendor firmware (ZTE 随身WiFi, Huawei HiLink) cannot run datacap, but they
count their own traffic per month. datacap reads that counter on an interval and stores the bytes
as an interface of their own (``zte:<name>``, ``huawei:<name>``), by the same rules as the kernel's
counters (:mod:`datacap.meter.delta`), adapted to what these counters do:

* no previous reading: a baseline, nothing counted;
* the stick's statistics period changed (ZTE ``date_month``, Huawei ``MonthLastClearTime``): the
  monthly reset; what the counter shows now was used since, and is counted (bytes of the old month
  after the previous reading are unknown and said so);
* same period, a counter went down: the stick rebooted and lost counts it had not saved, or its
  statistics were cleared by hand. Which one cannot be told, and counting the new value again could
  count bytes twice: nothing is counted, counting goes on from the new value (at most a few bytes
  are missed, never doubled);
* more than ``max_rate`` allows for the elapsed time: rejected, as for the kernel's counters;
* a gap (datacap or the stick down): the bytes since the last reading are spread evenly over it.

The last reading is kept in the store's ``counters`` table (the period in ``boot_id``), written in
the same transaction as the bytes, so a restart neither loses nor repeats any.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from datacap.errors import ConfigError, DatacapError
from datacap.meter.delta import MIN_ELAPSED, Delta, Kind
from datacap.model import Reading


class SourceError(DatacapError):
    """The stick could not be read (unreachable, refused the password, answered nonsense)."""


class SourceAuthError(SourceError):
    """The stick refused the password: nothing is read, nothing stored."""


class SourceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["zte", "huawei"]
    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,32}$")
    address: str = Field(description="the stick's web address, e.g. http://192.168.0.1")
    username: str = "admin"  # Huawei only
    password_file: str | None = None
    password_env: str | None = None
    interval: float = Field(60.0, ge=5, le=3600, description="seconds between readings")
    timeout: float = Field(10.0, gt=0, le=60)
    password_encoding: Literal["auto", "base64", "sha256", "ld-sha256"] = "auto"  # ZTE firmwares differ
    texts: bool = True  # read the stick's inbox into datacap's texts
    cross_check: str | None = Field(None, description="a local interface seeing the same traffic (e.g. usb0)")
    tolerance: float = Field(0.05, gt=0, lt=1, description="disagreement (fraction) worth an event")

    @field_validator("address")
    @classmethod
    def _address(cls, v: str) -> str:
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password:
            raise ValueError(f"expected http://host[:port] (no credentials in it), found {v!r}")
        return v.rstrip("/")

    @model_validator(mode="after")
    def _password(self) -> SourceConfig:
        if self.password_file and self.password_env:
            raise ValueError("give password_file or password_env, not both")
        return self

    @property
    def interface(self) -> str:
        return f"{self.kind}:{self.name}"

    def password(self) -> str:
        if self.password_env:
            value = os.environ.get(self.password_env)
            if value is None:
                raise ConfigError(f"sources {self.name}: the environment variable {self.password_env} is not set")
            return value
        if self.password_file:
            try:
                lines = Path(self.password_file).read_text(encoding="utf-8").splitlines()
            except OSError as exc:
                raise ConfigError(f"sources {self.name}: cannot read {self.password_file}: "
                                  f"{exc.strerror or exc}") from None
            return lines[0] if lines else ""
        return ""


@dataclass(frozen=True, slots=True)
class StickText:
    ident: str  # the stick's own id of the message
    sender: str
    text: str
    timestamp: str | None  # ISO 8601


@dataclass(frozen=True, slots=True)
class StickReading:
    period: str  # the stick's statistics period: a change is its monthly reset
    rx_bytes: int  # this period, as the stick counts them (download)
    tx_bytes: int
    wall: float
    texts: tuple[StickText, ...] = ()

    def as_counters(self) -> Reading:
        """How it is kept in the store's ``counters`` table (no ifindex, the period as "boot")."""
        return Reading(0, f"period:{self.period}", self.wall, self.wall, self.rx_bytes, self.tx_bytes, 0, 0)


class StickClient(Protocol):
    def read(self, with_texts: bool) -> StickReading: ...


def stick_delta(prev: Reading | None, cur: StickReading, max_rate_bps: int) -> Delta:
    """The bytes used between the stored reading ``prev`` and ``cur`` (see the module docstring)."""
    if prev is None:
        return Delta(Kind.BASELINE, start=cur.wall, end=cur.wall, note="first reading of the stick: baseline")
    elapsed = cur.wall - prev.wall
    start = prev.wall if elapsed > 0 else cur.wall
    limit = max_rate_bps / 8 * max(elapsed, MIN_ELAPSED)
    if prev.boot_id != f"period:{cur.period}":
        rx, tx = cur.rx_bytes, cur.tx_bytes
        kind, note = Kind.RESET, (f"the stick's statistics period changed ({prev.boot_id.removeprefix('period:')} -> "
                                  f"{cur.period}): monthly reset; bytes of the old period after the last "
                                  "reading are unknown")
    elif cur.rx_bytes < prev.rx_bytes or cur.tx_bytes < prev.tx_bytes:
        return Delta(Kind.GLITCH, start=start, end=cur.wall,
                     note=f"the stick's counters went down in the same period ({prev.rx_bytes}/{prev.tx_bytes} -> "
                          f"{cur.rx_bytes}/{cur.tx_bytes} rx/tx): a reboot lost unsaved counts or they were "
                          "cleared; nothing counted, counting goes on from here")
    else:
        rx, tx = cur.rx_bytes - prev.rx_bytes, cur.tx_bytes - prev.tx_bytes
        kind, note = Kind.NORMAL, ""
    if rx > limit or tx > limit:
        return Delta(Kind.REJECTED, start=start, end=cur.wall,
                     note=f"{kind.value}: {max(rx, tx)} bytes in {elapsed:.1f} s exceeds the {max_rate_bps} bit/s "
                          "plausibility limit; not counted")
    return Delta(kind, rx, tx, 0, 0, start=start, end=cur.wall, note=note)


def make_client(cfg: SourceConfig) -> StickClient:
    """The HTTP client for the stick's firmware (the password is read now: a missing file is an error)."""
    if cfg.kind == "zte":
        from datacap.meter.mifi_zte import ZteClient

        return ZteClient(cfg.address, cfg.password(), cfg.timeout, cfg.password_encoding)
    from datacap.meter.mifi_huawei import HuaweiClient

    return HuaweiClient(cfg.address, cfg.username, cfg.password(), cfg.timeout)
