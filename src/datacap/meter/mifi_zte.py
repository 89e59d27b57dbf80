"""ZTE stick firmware (MF79x, MC801/MC888, U30/F50 随身WiFi and kin): the ``goform`` web API.

Reads ``goform_get_cmd_process`` with ``multi_data=1`` after logging in through
``goform_set_cmd_process`` (``goformId=LOGIN``). Firmwares encode the password differently
(``WEB_ATTR_IF_SUPPORT_SHA256`` in their web UI): plain base64 (older), SHA-256 of the base64
(1), or SHA-256 of (SHA-256 of the password + the ``LD`` challenge the stick gives for each login)
(2, current). ``auto`` uses the challenge when the stick offers one, else base64. Not logged in, the
stick answers every field with an empty string: that is read as "log in again", once.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import time

from datacap.meter.mifi import SourceAuthError, SourceError, StickReading, StickText
from datacap.meter.mifi_http import Session

GET = "/goform/goform_get_cmd_process"
SET = "/goform/goform_set_cmd_process"
FIELDS = "monthly_rx_bytes,monthly_tx_bytes,date_month,monthly_time"
WRONG_PASSWORD = "3"


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest().upper()


def encode_password(password: str, encoding: str, ld: str) -> str:
    if encoding == "ld-sha256" or (encoding == "auto" and ld):
        return _sha(_sha(password) + ld)
    b64 = base64.b64encode(password.encode()).decode()
    return _sha(b64) if encoding == "sha256" else b64


def decode_text(content: str) -> str:
    """ZTE gives a text's content as hex of UCS-2/UTF-16 big-endian."""
    try:
        return bytes.fromhex(content).decode("utf-16-be")
    except ValueError:
        return content


def parse_date(value: str) -> str | None:
    """``yy,MM,dd,HH,mm,ss,+q`` (q: the offset in quarter hours) to ISO 8601; None when unreadable."""
    parts = [p.strip() for p in value.split(",")]
    try:
        yy, mo, dd, hh, mi, ss = (int(p) for p in parts[:6])
        quarters = int(parts[6]) if len(parts) > 6 and parts[6] else 0
        tz = dt.timezone(dt.timedelta(minutes=15 * quarters))
        return dt.datetime(2000 + yy, mo, dd, hh, mi, ss, tzinfo=tz).isoformat()
    except (ValueError, IndexError):
        return None


class ZteClient:
    def __init__(self, base: str, password: str, timeout: float, encoding: str = "auto") -> None:
        self.http = Session(base, timeout)
        self._password = password
        self.encoding = encoding
        self._logged_in = False

    def _get(self, cmd: str, multi: bool = True, **extra: str) -> dict[str, object]:
        query = {"isTest": "false", "cmd": cmd, **({"multi_data": "1"} if multi else {}), **extra,
                 "_": str(int(time.time() * 1000))}
        return self.http.json(GET, query=query)

    def login(self) -> None:
        ld = ""
        if self.encoding in ("auto", "ld-sha256"):
            ld = str(self._get("LD", multi=False).get("LD") or "")
            if self.encoding == "ld-sha256" and not ld:
                raise SourceError(f"{self.http.base}: the stick gave no LD login challenge; try "
                                  "password_encoding = \"base64\" or \"sha256\"")
        answer = self.http.json(SET, form={"isTest": "false", "goformId": "LOGIN",
                                           "password": encode_password(self._password, self.encoding, ld)})
        result = str(answer.get("result"))
        if result == WRONG_PASSWORD:
            raise SourceAuthError(f"{self.http.base}: the stick refused the password (wrong password)")
        if result != "0":
            raise SourceError(f"{self.http.base}: login failed (the stick answered result {result!r}; "
                              "locked after too many attempts, or another password_encoding)")
        self._logged_in = True

    def _figures(self) -> dict[str, object]:
        for attempt in (0, 1):
            if not self._logged_in:
                self.login()
            doc = self._get(FIELDS)
            if doc.get("monthly_rx_bytes") not in (None, ""):
                return doc
            self._logged_in = False  # the session expired (or the stick rebooted): once more
            if attempt:
                break
        raise SourceError(f"{self.http.base}: the stick gave no monthly counters after logging in")

    def read(self, with_texts: bool) -> StickReading:
        doc = self._figures()
        wall = time.time()
        try:
            rx, tx = int(str(doc["monthly_rx_bytes"])), int(str(doc["monthly_tx_bytes"]))
        except (KeyError, ValueError):
            raise SourceError(f"{self.http.base}: unreadable monthly counters {doc!r:.200}") from None
        if rx < 0 or tx < 0:
            raise SourceError(f"{self.http.base}: negative monthly counters {rx}/{tx}")
        period = str(doc.get("date_month") or "")
        return StickReading(period, rx, tx, wall, self._texts() if with_texts else ())

    def _texts(self) -> tuple[StickText, ...]:
        doc = self._get("sms_data_total", multi=False, page="0", data_per_page="500", mem_store="1", tags="10",
                        order_by="order by id desc")
        out = []
        for m in doc.get("messages") or []:  # type: ignore[attr-defined]
            if isinstance(m, dict) and m.get("id") is not None:
                out.append(StickText(str(m["id"]), str(m.get("number") or ""), decode_text(str(m.get("content") or "")),
                                     parse_date(str(m.get("date") or ""))))
        return tuple(out)
