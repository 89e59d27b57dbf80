"""Writes from the dashboard's own pages on loopback, without an access token, yet not from other sites.

Without a token the dashboard answers only on loopback names (the Host check in app.py), so a page
elsewhere can reach it only through the user's browser. Such a request is refused unless it is
same-origin (its Origin header names the host it was sent to: browsers always send Origin on a
cross-site POST, and a page cannot forge it) and carries the per-process form token, which only a
page served by this process holds (another site cannot read it: no CORS headers are sent).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import urlsplit

from starlette.requests import Request

HEADER = "x-datacap-csrf"


class FormTokens:
    """One secret per server process; the token of a purpose is an HMAC of it, so nothing is stored."""

    def __init__(self) -> None:
        self._secret = secrets.token_bytes(32)

    def token(self, purpose: str = "write") -> str:
        return hmac.new(self._secret, purpose.encode(), hashlib.sha256).hexdigest()

    def accepts(self, request: Request, purpose: str = "write") -> bool:
        presented = request.headers.get(HEADER, "")
        return same_origin(request) and hmac.compare_digest(presented.encode(), self.token(purpose).encode())


def same_origin(request: Request) -> bool:
    """The Origin header is present and names the scheme, host and port the request was sent to."""
    origin = request.headers.get("origin")
    host = request.headers.get("host")
    if not origin or not host or origin == "null":
        return False
    parts = urlsplit(origin)
    return parts.scheme in ("http", "https") and parts.netloc.lower() == host.lower()
