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
