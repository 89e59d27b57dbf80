"""The small HTTP session both stick clients share: cookies, a Referer, bounded time and size."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from http.cookiejar import CookieJar
from typing import Any
from urllib.parse import urlencode

from datacap.meter.mifi import SourceError

MAX_BODY = 4 << 20  # an answer larger than this is not a stick's


class Session:
    def __init__(self, base: str, timeout: float) -> None:
        self.base = base
        self.timeout = timeout
        self.cookies = CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))

    def request(self, path: str, *, query: dict[str, str] | None = None, form: dict[str, str] | None = None,
                body: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[bytes, dict[str, str]]:
        url = f"{self.base}{path}" + (f"?{urlencode(query)}" if query else "")
        data = urlencode(form).encode() if form is not None else body
        req = urllib.request.Request(url, data=data, headers={"Referer": f"{self.base}/", **(headers or {})})
        if form is not None:
            req.add_header("Content-Type", "application/x-www-form-urlencoded; charset=UTF-8")
        try:
            with self.opener.open(req, timeout=self.timeout) as resp:
                raw = resp.read(MAX_BODY + 1)
                got = {k.lower(): v for k, v in resp.headers.items()}
        except urllib.error.HTTPError as exc:
            raise SourceError(f"{self.base}{path}: HTTP {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise SourceError(f"{self.base}: unreachable: {reason}") from None
        if len(raw) > MAX_BODY:
            raise SourceError(f"{self.base}{path}: answer larger than {MAX_BODY} bytes")
        return raw, got

    def json(self, path: str, **kwargs: Any) -> dict[str, Any]:
        raw, _ = self.request(path, **kwargs)
        try:
            doc = json.loads(raw.decode("utf-8", "replace"))
        except ValueError:
            raise SourceError(f"{self.base}{path}: expected JSON, found {raw[:80]!r}") from None
        if not isinstance(doc, dict):
            raise SourceError(f"{self.base}{path}: expected a JSON object, found {raw[:80]!r}")
        return doc
