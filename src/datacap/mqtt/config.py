"""``[mqtt]``: where datacap publishes Home Assistant discovery configs and states.

The password is never written in the config itself (a config is often world-readable and shown in
bug reports): it comes from a file or an environment variable, and is never logged.
"""

from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from datacap.errors import ConfigError

DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}
_NODE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True)
class Broker:
    host: str
    port: int
    tls: bool


class MqttConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(description='mqtt://host[:1883] or mqtts://host[:8883] (TLS)')
    username: str | None = None
    password_file: str | None = Field(None, description="a file holding the password (first line)")
    password_env: str | None = Field(None, description="an environment variable holding the password")
    ca_file: str | None = Field(None, description="CA bundle for mqtts:// (default: the system's)")
    node: str = Field(default_factory=lambda: _default_node(), description="node id in topics and unique ids")
    discovery_prefix: str = "homeassistant"
    interval: float = Field(30.0, ge=1, le=3600, description="states at most this often (seconds), on change")
    top_clients: int = Field(5, ge=0, le=50, description="LAN clients published (today's largest)")
    keepalive: int = Field(60, ge=5, le=3600)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
            raise ValueError(f"expected mqtt://host[:port] or mqtts://host[:port], found {value!r}")
        if parts.password is not None or parts.username is not None:
            raise ValueError("expected no user or password in the URL: use username and password_file or "
                             "password_env")
        try:
            parts.port  # noqa: B018 (raises on a bad port)
        except ValueError:
            raise ValueError(f"expected a port number 1-65535 in {value!r}") from None
        if parts.path not in ("", "/"):
            raise ValueError(f"expected no path in the broker URL, found {parts.path!r}")
        return value

    @field_validator("node")
    @classmethod
    def _node(cls, value: str) -> str:
        if not _NODE.match(value):
            raise ValueError(f"expected letters, digits, '_' or '-' (at most 64), found {value!r}")
        return value

    @field_validator("discovery_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not value or any(c in value for c in "#+") or value.startswith("/") or value.endswith("/"):
            raise ValueError(f"expected a topic prefix like 'homeassistant', found {value!r}")
        return value

    @model_validator(mode="after")
    def _one_password(self) -> MqttConfig:
        if self.password_file and self.password_env:
            raise ValueError("mqtt: give password_file or password_env, not both")
        if (self.password_file or self.password_env) and not self.username:
            raise ValueError("mqtt: a password needs a username")
        return self

    @property
    def broker(self) -> Broker:
        parts = urlsplit(self.url)
        assert parts.hostname is not None
        return Broker(parts.hostname, parts.port or DEFAULT_PORTS[parts.scheme], parts.scheme == "mqtts")

    def password(self) -> str | None:
        """The password from its file or variable; a missing one is a ConfigError (naming no secret)."""
        if self.password_env:
            value = os.environ.get(self.password_env)
            if value is None:
                raise ConfigError(f"mqtt.password_env: the environment variable {self.password_env} is not set")
            return value
        if self.password_file:
            try:
                lines = Path(self.password_file).read_text(encoding="utf-8").splitlines()
            except OSError as exc:
                raise ConfigError(f"mqtt.password_file: cannot read {self.password_file}: "
                                  f"{exc.strerror or exc}") from None
            return lines[0] if lines else ""
        return None


def _default_node() -> str:
    name = re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname().split(".")[0])[:64]
    return name or "datacap"
