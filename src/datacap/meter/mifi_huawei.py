"""Huawei HiLink firmware (E3372h, E5xxx MiFi, B-series CPEs): the ``/api`` XML web API.

A session starts at ``/api/webserver/SesTokInfo`` (a ``SessionID`` cookie and a CSRF token); the
login posts the password as ``password_type`` 4: base64(sha256(user + base64(sha256(password)) +
token)), each sha256 as lower-case hex. The stick answers ``<response>OK</response>`` and a new
session, or ``<error><code>108006</code>`` for a wrong password (108007: locked after too many).
Month figures come from ``/api/monitoring/month_statistics`` (``CurrentMonthDownload``/``Upload``,
``MonthLastClearTime`` = the period); texts from ``/api/sms/sms-list``. Error 125002/100003 mean the
session ended: log in again, once.
"""

from __future__ import annotations

import base64
import hashlib
import time
import xml.etree.ElementTree as ET

from datacap.meter.mifi import SourceAuthError, SourceError, StickReading, StickText
from datacap.meter.mifi_http import Session

WRONG_PASSWORD = {"108006", "108002"}
LOCKED = {"108007", "108003"}
SESSION_GONE = {"125001", "125002", "125003", "100003"}
SMS_LIST = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?><request><PageIndex>1</PageIndex><ReadCount>50</ReadCount>"
            "<BoxType>1</BoxType><SortType>0</SortType><Ascending>0</Ascending><UnreadPreferred>0</UnreadPreferred>"
            "</request>")


def encode_password(username: str, password: str, token: str) -> str:
    inner = base64.b64encode(hashlib.sha256(password.encode()).hexdigest().encode()).decode()
    return base64.b64encode(hashlib.sha256((username + inner + token).encode()).hexdigest().encode()).decode()


class HuaweiError(SourceError):
    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


def parse(raw: bytes, where: str) -> ET.Element:
    try:
        root = ET.fromstring(raw)
    except ET.ParseError:
        raise SourceError(f"{where}: expected XML, found {raw[:80]!r}") from None
    if root.tag == "error":
        code = (root.findtext("code") or "").strip()
        raise HuaweiError(f"{where}: the stick answered error {code}", code)
    return root


class HuaweiClient:
    def __init__(self, base: str, username: str, password: str, timeout: float) -> None:
        self.http = Session(base, timeout)
        self.username = username
        self._password = password
        self._token = ""
        self._cookie = ""
        self._logged_in = False

    def _session(self) -> None:
        raw, _ = self.http.request("/api/webserver/SesTokInfo")
        root = parse(raw, f"{self.http.base}/api/webserver/SesTokInfo")
        ses, tok = (root.findtext("SesInfo") or "").strip(), (root.findtext("TokInfo") or "").strip()
        if not ses.startswith("SessionID=") or not tok:
            raise SourceError(f"{self.http.base}: no session from /api/webserver/SesTokInfo")
        self._cookie = ses
        self._token = tok

    def _call(self, path: str, body: str | None = None) -> ET.Element:
        headers = {"Cookie": self._cookie, "__RequestVerificationToken": self._token}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded; charset=UTF-8"
        raw, got = self.http.request(path, body=body.encode() if body is not None else None, headers=headers)
        if "set-cookie" in got:  # a new session after the login
            self._cookie = got["set-cookie"].split(";", 1)[0]
        token = got.get("__requestverificationtokenone") or got.get("__requestverificationtoken")
        if token:
            self._token = token.split("#", 1)[0]
        return parse(raw, f"{self.http.base}{path}")

    def login(self) -> None:
        self._session()
        body = (f"<?xml version=\"1.0\" encoding=\"UTF-8\"?><request><Username>{_x(self.username)}</Username>"
                f"<Password>{encode_password(self.username, self._password, self._token)}</Password>"
                "<password_type>4</password_type></request>")
        try:
            root = self._call("/api/user/login", body)
        except HuaweiError as exc:
            if exc.code in WRONG_PASSWORD:
                raise SourceAuthError(f"{self.http.base}: the stick refused the password (wrong user or password, "
                                      f"error {exc.code})") from None
            if exc.code in LOCKED:
                raise SourceAuthError(f"{self.http.base}: the stick locked the login after too many attempts "
                                      f"(error {exc.code}); wait, then check the password") from None
            raise
        if (root.text or "").strip() != "OK":
            raise SourceError(f"{self.http.base}: unexpected login answer")
        self._logged_in = True

    def _get(self, path: str, body: str | None = None) -> ET.Element:
        for attempt in (0, 1):
            if not self._logged_in:
                self.login()
            try:
                return self._call(path, body)
            except HuaweiError as exc:
                if exc.code not in SESSION_GONE or attempt:
                    raise
                self._logged_in = False
        raise AssertionError("unreachable")

    def read(self, with_texts: bool) -> StickReading:
        root = self._get("/api/monitoring/month_statistics")
        wall = time.time()
        try:
            rx, tx = int(root.findtext("CurrentMonthDownload") or ""), int(root.findtext("CurrentMonthUpload") or "")
        except ValueError:
            raise SourceError(f"{self.http.base}: unreadable month statistics") from None
        if rx < 0 or tx < 0:
            raise SourceError(f"{self.http.base}: negative month statistics {rx}/{tx}")
        period = (root.findtext("MonthLastClearTime") or "").strip()
        return StickReading(period, rx, tx, wall, self._texts() if with_texts else ())

    def _texts(self) -> tuple[StickText, ...]:
        root = self._get("/api/sms/sms-list", SMS_LIST)
        out = []
        for m in root.iter("Message"):
            when = (m.findtext("Date") or "").strip()
            out.append(StickText((m.findtext("Index") or "").strip(), (m.findtext("Phone") or "").strip(),
                                 m.findtext("Content") or "", when.replace(" ", "T") if when else None))
        return tuple(out)


def _x(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
