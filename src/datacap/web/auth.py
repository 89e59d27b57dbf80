"""Who may talk to the dashboard: loopback without a token, anything else only with the token.

The token travels as ``Authorization: Bearer TOKEN`` (scripts, Prometheus, SMS forwarders, which
may also use ``?token=``) or as a cookie the login form sets once (browsers). The cookie is
HttpOnly and SameSite=Strict, so another site open in the same browser cannot post a calibration.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from datacap.errors import ConfigError, InputError

if TYPE_CHECKING:  # the daemon checks listen/token here without loading the web stack
    from fastapi import Request

COOKIE = "datacap_token"
LOOPBACK_NAMES = {"localhost", "ip6-localhost", "ip6-loopback"}


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` for IPv6) -> (host, port); ConfigError names what was found."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not host:
        raise ConfigError(f"web.listen / --listen: expected HOST:PORT such as 127.0.0.1:8765, found {text!r}")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        port = int(port_text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise ConfigError(f"web.listen / --listen: expected a port 0-65535 after the colon, found {port_text!r}")
    return host, port


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and the loopback names; an empty host or 0.0.0.0 listens everywhere."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_listen(host: str, token: str | None) -> None:
    """Refuse to expose the dashboard beyond this machine without a token."""
    if not is_loopback(host) and not token:
        raise ConfigError(f"web.listen: listening on {host!r} (beyond loopback) needs a token: set web.token in "
                          "the config, or pass --token-file FILE or DATACAP_WEB_TOKEN (at least 16 characters), or "
                          "listen on 127.0.0.1")
    if token is not None and len(token) < 16:
        raise ConfigError(f"web.token / --token-file: expected at least 16 characters, found {len(token)}")


def presented_token(request: Request) -> str | None:
    """The token a request carries: bearer header, then the login cookie, then ``?token=``."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.cookies.get(COOKIE) or request.query_params.get("token") or None


def token_ok(expected: str | None, presented: str | None) -> bool:
    """Constant-time comparison; with no expected token nothing matches."""
    if not expected or not presented:
        return False
    return hmac.compare_digest(expected.encode(), presented.encode())


TOKEN_ENV = "DATACAP_WEB_TOKEN"


def read_token_file(path: Path) -> str:
    """The token in ``path`` (its first line, without surrounding blanks); ConfigError otherwise."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the token file: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: expected the token as UTF-8 text") from None
    token = text.strip().splitlines()[0].strip() if text.strip() else ""
    if not token:
        raise ConfigError(f"{path}: the token file is empty")
    return token


def refuse_token_argument(token: str | None) -> None:
    """``--token X`` is refused: the process list shows it to every local user."""
    if token is not None:
        raise InputError("--token puts the token in the process list, where every local user can read it "
                         "(ps): use --token-file FILE, the DATACAP_WEB_TOKEN environment variable, or web.token "
                         "/ web.token_file in the config")


def resolve_token(cfg: Any, token_file: Path | None = None) -> str | None:
    """The access token: ``--token-file``, else $DATACAP_WEB_TOKEN, else the config's web.token_file,
    else web.token. Never from the command line: every local user can read that in ``ps``."""
    if token_file is not None:
        return read_token_file(token_file)
    if os.environ.get(TOKEN_ENV, "").strip():
        return os.environ[TOKEN_ENV].strip()
    web = getattr(cfg, "web", None)
    file_name = getattr(web, "token_file", None)
    if file_name:
        return read_token_file(Path(file_name))
    return getattr(web, "token", None)
