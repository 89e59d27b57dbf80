"""``[hub]``: where a device pushes its usage (and, on the hub, where the hub keeps it).

Device keys: ``url``, ``token_file``, ``device``, ``every``. The hub server adds its own keys here.
"""

from __future__ import annotations

import socket
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from datacap.errors import InputError
from datacap.units import parse_duration


class HubConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str | None = Field(None, description="the hub's base URL; the device pushes to <url>/api/v1/ingest")
    token_file: Path | None = Field(None, description="file holding this device's token (mode 0600)")
    device: str | None = Field(None, description="this device's name as registered on the hub (default: hostname)")
    every: str = Field("60s", description="how often the device pushes")
    ca_file: Path | None = Field(None, description="PEM certificate(s) the device trusts for the hub's TLS "
                                 "(a hub serving its own --tls-cert); default: the system's CAs")
    # The hub server (`datacap hub serve`, `datacap fleet`, `datacap hub device ...`).
    database: str | None = Field(None, description="the hub's database: a SQLite path (default "
                                 "/var/lib/datacap/hub.db) or postgresql://user@host/db")
    listen: str = Field("127.0.0.1:8770", description="where `hub serve` listens (HOST:PORT)")
    tls_cert: Path | None = Field(None, description="PEM certificate: `hub serve` speaks HTTPS itself")
    tls_key: Path | None = Field(None, description="PEM private key for tls_cert")
    rate: str = Field("120/min", description="batches a device may send per minute ('N/min' or 'N/s')")
    max_rows: int = Field(5000, ge=1, le=5000, description="usage (and attribution) rows per batch")
    silent_after: str = Field("15m", description="a device with no batch for this long is silent")
    fleet_remaining_below: str = Field("10%", description="fleet rule: any card with less remaining")
    fleet_notify: list[str] = Field(default_factory=list, description="[channels] the fleet rules notify")
    alert_state: Path | None = Field(None, description="SQLite file of the hub's alert state (default: "
                                     "next to a SQLite hub database, else /var/lib/datacap/hub-alerts.db)")

    @field_validator("silent_after")
    @classmethod
    def _silent(cls, value: str) -> str:
        try:
            parse_duration(value)
        except InputError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("rate")
    @classmethod
    def _rate(cls, value: str) -> str:
        rate_per_second(value)
        return value

    @field_validator("fleet_remaining_below")
    @classmethod
    def _percent(cls, value: str) -> str:
        text = value.strip()
        if not text.endswith("%") or not 0 < float(text[:-1] or "nan") <= 100:
            raise ValueError(f"expected a percentage like '10%', found {value!r}")
        return text

    @property
    def silent_seconds(self) -> int:
        return parse_duration(self.silent_after)

    @property
    def rate_per_second(self) -> float:
        return rate_per_second(self.rate)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"expected an http:// or https:// URL like 'https://hub.example.com', found {value!r}")
        return value.rstrip("/")

    @field_validator("every")
    @classmethod
    def _every(cls, value: str) -> str:
        try:
            seconds = parse_duration(value)
        except InputError as exc:
            raise ValueError(str(exc)) from None
        if not 1 <= seconds <= 86_400:
            raise ValueError(f"expected between '1s' and '1d', found {value!r}")
        return value

    @model_validator(mode="after")
    def _token_with_url(self) -> HubConfig:
        if self.url is not None and self.token_file is None:
            raise ValueError("hub.token_file: expected the file holding this device's token when hub.url is set")
        return self

    @property
    def every_seconds(self) -> int:
        return parse_duration(self.every)

    @property
    def pushes(self) -> bool:
        """Whether this machine is a device that pushes (url and token_file both given)."""
        return self.url is not None

    @property
    def device_name(self) -> str:
        return self.device or socket.gethostname()


def rate_per_second(text: str) -> float:
    """``"120/min"`` -> 2.0; ValueError (for pydantic) names what was expected."""
    count, _, unit = text.replace(" ", "").partition("/")
    per = {"s": 1, "sec": 1, "min": 60, "h": 3600, "hour": 3600}.get(unit)
    try:
        n = float(count)
    except ValueError:
        n = -1
    if per is None or n <= 0:
        raise ValueError(f"expected a rate like '120/min' or '5/s', found {text!r}")
    return n / per
